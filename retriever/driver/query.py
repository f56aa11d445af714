"""Search a saved index with free text: the top passages for each question.

    python -m retriever.driver.query --index_dir runs/eval/scifact/index "does vitamin D prevent colds?"
    echo "one question a line" | python -m retriever.driver.query --index_dir runs/eval/scifact/index

Loads the model named in the index's metadata (or --model_name_or_path, whose weights must
be the index's), encodes each query as the corpus was encoded (template, EOS, lengths,
pooling), and prints rank, document id, score and the start of the title and text;
--output_file writes the same as JSONL, one object per result. Queries come after the
flags, or one a line on standard input.
"""
import dataclasses
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Optional

from retriever.driver import make_parser, run_cli, setup_logging
from retriever.encoding import embedding_meta, encode_as_trained, load_encoder
from retriever.io import atomic_write, check_counts
from retriever.searcher import COMPATIBLE_FIELDS, check_compatible, load_index, search
from retriever.spec import EmbeddingSpec

logger = logging.getLogger(__name__)


@dataclass
class QueryArguments:
    index_dir: str = field(default=None, metadata={
        "help": "A saved index: <output_dir>/index of driver.evaluate (or search --save_index)."})
    top_k: int = field(default=10, metadata={"help": "Results per query."})
    model_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "The query model; default: the one the index names. Its weights must be the index's."})
    output_file: Optional[str] = field(default=None, metadata={
        "help": "Also write the results here as JSONL: query, rank, doc_id, score, title, text."})
    batch_size: int = field(default=32, metadata={"help": "Queries per forward pass."})
    show_chars: int = field(default=100, metadata={"help": "Characters of title + text printed per result."})

    def __post_init__(self):
        if not self.index_dir:
            raise ValueError("--index_dir is required")
        check_counts(self, "top_k", "batch_size", "show_chars")


def query_model(meta: dict, model_name: Optional[str]):
    """(model, tokenizer) that embed queries exactly as the index's passages were embedded: the index
    records the spec's reading fields, with the prefixes and task folded into its templates."""
    given = {name: meta[name] for name in EmbeddingSpec().reading()}
    model, tokenizer = load_encoder(model_name or meta["model"],
                                    {**given, "padding_side": meta.get("padding_side", "right")})
    model.spec = dataclasses.replace(model.spec, query_prefix="", passage_prefix="", task_instructions={})
    return model, tokenizer


def check_query_model(model_name: Optional[str], model, dim: int, meta: dict) -> None:
    """Refuse a query model whose vectors cannot be compared with the index's, naming what differs
    (another model or weights, pooling, normalisation, text format, dimension)."""
    name = model_name or meta["model"]
    ours = embedding_meta(name, model.spec, "query", dim)
    fields = COMPATIBLE_FIELDS if model_name is None else tuple(f for f in COMPATIBLE_FIELDS if f != "model")
    check_compatible(ours, meta, f"the query model {name}", "the index", fields)


def main(argv=None):
    args, queries = make_parser(QueryArguments, __doc__).parse_args_into_dataclasses(
        args=argv, return_remaining_strings=True)
    setup_logging()
    flags = [q for q in queries if q.startswith("--")]
    if flags:
        raise ValueError(f"unknown flag {flags[0]} (--help lists the flags; queries come after them)")
    blank = [i for i, query in enumerate(queries, start=1) if not query.strip()]
    if blank:  # an empty question would still be embedded (the template alone) and "answered"
        raise ValueError(f"query {blank[0]} of {len(queries)} given after the flags is empty: give a question in words")
    index, doc_ids, meta, docs = load_index(args.index_dir)
    if not queries:
        queries = [line.strip() for line in sys.stdin if line.strip()]
    if not queries:
        raise ValueError("no query: give queries after the flags, or one a line on standard input")
    model, tokenizer = query_model(meta, args.model_name_or_path)
    embeddings = encode_as_trained(model, tokenizer, queries, "query", args.batch_size, "encode query")
    check_query_model(args.model_name_or_path, model, embeddings.shape[1], meta)
    if hasattr(index, "nprobe"):
        index.nprobe = meta.get("nprobe", index.nprobe)
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = max(meta.get("ef_search", index.hnsw.efSearch), args.top_k)
    scores, rows = search(index, embeddings, args.top_k)
    results = []
    for query, query_scores, query_rows in zip(queries, scores, rows):
        print(f"\n{query}")
        for rank, (score, row) in enumerate(((s, r) for s, r in zip(query_scores, query_rows) if r >= 0), start=1):
            doc_id = doc_ids[row]
            doc = docs[doc_id]
            text = f"{doc['title']}: {doc['text']}" if doc["title"] else doc["text"]
            shown = " ".join(text.split())[: args.show_chars]
            print(f"{rank:>3}  {doc_id}  {score:.4f}  {shown}")
            results.append({"query": query, "rank": rank, "doc_id": doc_id, "score": float(score), **doc})
    if args.output_file:
        with atomic_write(args.output_file) as f:
            for result in results:
                f.write(json.dumps(result, ensure_ascii=False) + "\n")
        logger.info("wrote %d results to %s", len(results), args.output_file)
    return results


if __name__ == "__main__":
    sys.exit(run_cli(main))

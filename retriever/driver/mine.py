"""Build Tevatron-layout training groups from a BEIR split, with mined hard negatives.

    python -m retriever.driver.mine --data_dir ../shared/data/scifact --split train \
        --output_file runs/scifact-train.jsonl [--encoder runs/model]

Positives come from the split's qrels (relevance > 0). Negatives are the
top-ranked passages that are not positives, after skipping the first `skip_top`
of them: the very top non-positives are often unjudged positives. The ranking
comes from BM25, or, with --encoder, from a trained dense retriever (round 2:
negatives that fool the round-1 model); `torchrun --nproc_per_node N -m retriever.driver.mine
--encoder ...` encodes the corpus and queries across N processes.
"""
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Optional

from retriever.bm25 import BM25Index
from retriever.text import format_text, join_title
from retriever.data import load_corpus, load_qrels, load_queries
from retriever.io import atomic_write, check_counts
from retriever.driver import make_parser, run_cli, setup_logging

logger = logging.getLogger(__name__)


@dataclass
class MineArguments:
    data_dir: str = field(metadata={"help": "BEIR directory with corpus, queries and qrels."})
    output_file: str = field(metadata={"help": "Training groups (JSONL) written here."})
    split: str = field(default="train", metadata={"help": "Queries and positives come from qrels/<split>.tsv."})
    n_negatives: int = field(default=20, metadata={"help": "Hard negatives kept per query."})
    skip_top: int = field(default=3, metadata={"help": "Non-positives skipped at the top of the ranking."})
    depth: int = field(default=100, metadata={"help": "Results looked at per query."})
    encoder: Optional[str] = field(default=None, metadata={
        "help": "A trained retriever's directory: mine with it instead of BM25."})
    batch_size: int = field(default=32, metadata={"help": "Encoding batch size (with --encoder)."})

    def __post_init__(self):
        check_counts(self, "n_negatives", "depth", "batch_size")
        check_counts(self, "skip_top", minimum=0)


def bm25_ranker(docs: list[dict]):
    index = BM25Index([format_text(d["text"], title=d["title"]) for d in docs])
    return lambda queries, depth: index.search(queries, depth).rows


def dense_ranker(docs: list[dict], model_dir: str, batch_size: int):
    """Encode the corpus once with a trained retriever; rank queries by FAISS inner product. Under torchrun every
    rank encodes its slice of the corpus and of the queries, and rank 0 ranks (the others get None)."""
    from retriever.encoding import encode_gathered, load_encoder
    from retriever.searcher import build_index, search

    model, tokenizer = load_encoder(model_dir)

    def embed(texts, kind):
        return encode_gathered(model, tokenizer, texts, kind, batch_size, desc=f"mine: encode {kind}")

    passages = embed([join_title(d["text"], d["title"]) for d in docs], "passage")
    index = build_index(passages) if passages is not None else None

    def rank_queries(queries, depth):
        embedded = embed(queries, "query")
        return search(index, embedded, depth).rows if index is not None else None
    return rank_queries


def mine_groups(docs: list[dict], queries: dict, qrels: dict, n_negatives: int, skip_top: int, depth: int,
                ranker=None):
    passages = {d["id"]: {"docid": d["id"], "title": d["title"], "text": d["text"]} for d in docs}
    doc_ids = [d["id"] for d in docs]
    query_ids = [q for q, rels in qrels.items() if q in queries and any(r > 0 for r in rels.values())]
    rows = (ranker or bm25_ranker(docs))([queries[q] for q in query_ids], depth)
    if rows is None:  # under torchrun, a rank other than 0: rank 0 ranks and writes
        return None
    groups = []
    for query_id, ranked in zip(query_ids, rows):
        positives = {d for d, r in qrels[query_id].items() if r > 0 and d in passages}
        if not positives:
            continue
        candidates = [doc_ids[j] for j in ranked if j >= 0 and doc_ids[j] not in positives]
        groups.append({
            "query_id": query_id,
            "query": queries[query_id],
            "positive_passages": [passages[d] for d in sorted(positives)],
            "negative_passages": [passages[d] for d in candidates[skip_top:skip_top + n_negatives]],
        })
    return groups


def main(argv=None):
    args, = make_parser(MineArguments, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    if not args.encoder:  # BM25: one process, no torch
        return mine(args)
    from retriever.distributed import inference_group

    with inference_group():
        return mine(args)


def mine(args: MineArguments):
    """The groups file written (with --encoder under torchrun: by rank 0; None on the others)."""
    docs = load_corpus(args.data_dir)
    ranker = dense_ranker(docs, args.encoder, args.batch_size) if args.encoder else bm25_ranker(docs)
    groups = mine_groups(docs, load_queries(args.data_dir), load_qrels(args.data_dir, args.split),
                         args.n_negatives, args.skip_top, args.depth, ranker)
    if groups is None:
        return None
    with atomic_write(args.output_file) as f:
        for group in groups:
            f.write(json.dumps(group, ensure_ascii=False) + "\n")
    logger.info("wrote %d training groups to %s", len(groups), args.output_file)
    return args.output_file


if __name__ == "__main__":
    sys.exit(run_cli(main))

"""Evaluate a model on BEIR directories in one process: encode, search, score, save the index.

    python -m retriever.driver.evaluate --model_name_or_path runs/model --data_dir ../shared/data/scifact \
        --output_dir runs/eval/scifact [--split test]
    python -m retriever.driver.evaluate --model_name_or_path runs/model --data_dir A B --output_dir runs/A runs/B

Loads the model once, then for each --data_dir (with its --output_dir) encodes the corpus and
the split's queries as the model was trained (its embedding_spec.json; a base model takes
--pooling and the text flags), searches them with FAISS and writes OUTPUT_DIR/run.trec,
metrics.json (MRR@10, nDCG@10, Recall@100, nDCG@10 per query, `seconds`: the set's wall
time, the first set's with the model load, and `reused_embeddings`: the kinds, passage and/or
query, that --cache_embeddings found in the cache instead of encoding them), emb/corpus.npz and
emb/queries.npz (as encode writes them) and, unless --save_index False, index/ for
python -m retriever.driver.query.
Prints each set's metrics table. Every set's data is read before the model is loaded, so a
broken file fails at once. Under `torchrun --nproc_per_node N` each process encodes its own
slice of every corpus and query set, and the first writes the same files one process writes.
"""
import logging
import sys
import time
from pathlib import Path

from retriever.arguments import EvaluateArguments
from retriever.data import load_corpus
from retriever.driver import make_parser, run_cli, setup_logging
from retriever.distributed import inference_group
from retriever.encoding import (check_finite_embeddings, corpus_texts, device_of, embedding_meta, encode_cached,
                                encode_gathered, half_weights, load_encoder, split_queries)
from retriever.metrics import report, to_run
from retriever.searcher import index_and_search, save_embeddings

logger = logging.getLogger(__name__)


def read_set(data_dir: str, split: str) -> dict:
    docs = load_corpus(data_dir)
    q_ids, q_texts = split_queries(data_dir, split)
    if not q_texts:
        raise ValueError(f"--data_dir {data_dir}: no queries of qrels/{split}.tsv in queries.jsonl")
    return {"docs": docs, "passage": corpus_texts(docs), "query": (q_ids, q_texts)}


def main(argv=None) -> list[dict]:
    """The metrics of each set, in the order of --data_dir (under torchrun: on rank 0; [] on the others)."""
    args, = make_parser(EvaluateArguments, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    with inference_group():
        return evaluate_sets(args)


def evaluate_sets(args: EvaluateArguments) -> list[dict]:
    started = time.monotonic()
    sets = [(data_dir, split, out, read_set(data_dir, split)) for data_dir, split, out in args.sets()]
    model_name = args.model_name_or_path
    model, tokenizer = load_encoder(model_name, args)
    model_name = model.name_or_path  # the base model's with --zero_shot
    device = device_of(model)
    model = half_weights(model, device, args.bf16, args.fp16)
    spec = model.spec
    name = args.name or Path(model_name.rstrip("/")).name
    results = []
    for data_dir, split, out, data in sets:
        out = Path(out)
        embedded, reused = {}, []
        for kind in ("passage", "query"):
            ids, texts = data[kind]
            logger.info("encoding %d %s texts (max %d tokens) with %s on %s", len(texts), kind, spec.max_len(kind),
                        model_name, device)
            encode_args = (model, tokenizer, texts, kind, args.batch_size, f"encode {kind}", args.task, args.bf16,
                           args.fp16)
            embeddings, was_cached = encode_cached(*encode_args) if args.cache_embeddings \
                else (encode_gathered(*encode_args), False)
            if was_cached:
                reused.append(kind)
            if embeddings is None:  # under torchrun, a rank other than 0: its slice is with rank 0 now
                continue
            check_finite_embeddings(embeddings, model_name)
            meta = embedding_meta(model_name, spec, kind, embeddings.shape[1], args.task)
            save_embeddings(out / "emb" / ("corpus.npz" if kind == "passage" else "queries.npz"), embeddings, ids,
                            meta)
            embedded[kind] = embeddings, meta
        if not embedded:
            continue
        (p_ids, _), (q_ids, _) = data["passage"], data["query"]
        p_emb, p_meta = embedded["passage"]
        index_dir = out / "index" if args.save_index else None
        scores, rows = index_and_search(p_emb, embedded["query"][0], args, index_dir=index_dir, p_ids=p_ids,
                                        p_meta=p_meta, docs={d["id"]: d for d in data["docs"]})
        now = time.monotonic()
        results.append(report(to_run(q_ids, p_ids, scores, rows), data_dir, split, out, name, doc_ids=p_ids,
                              extra={"seconds": round(now - started, 1), "reused_embeddings": reused}))
        started = now
        logger.info("wrote %s: run.trec, metrics.json, emb/%s", out, ", index/" if args.save_index else "")
    return results


if __name__ == "__main__":
    sys.exit(run_cli(main))

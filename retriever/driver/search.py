"""Search corpus embeddings with FAISS, write a TREC run, evaluate it against qrels.

    python -m retriever.driver.search --query_embeddings runs/emb/queries.npz \
        --corpus_embeddings 'runs/emb/corpus*.npz' --qrels ../shared/data/scifact --output_dir runs/search
"""
import glob
import json
import logging
import sys
from pathlib import Path

import faiss
import numpy as np
from transformers import HfArgumentParser

from retriever.arguments import SearchArguments
from retriever.data import load_qrels
from retriever.io import DataError, write_json
from retriever.metrics import evaluate, format_table, write_trec_run
from retriever.driver import run_cli, setup_logging

logger = logging.getLogger(__name__)


def load_embeddings(path) -> tuple[np.ndarray, list[str], dict]:
    with np.load(path) as data:
        return data["embeddings"], data["ids"].tolist(), json.loads(str(data["meta"]))


def load_corpus_shards(pattern: str) -> tuple[np.ndarray, list[str], dict]:
    paths = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
    paths = [p for p in paths if Path(p).is_file()]
    if not paths:
        raise FileNotFoundError(f"no corpus embeddings match '{pattern}'; run encode first")
    parts = [load_embeddings(p) for p in paths]
    for path, (_, _, meta) in zip(paths[1:], parts[1:]):
        check_compatible(parts[0][2], meta, paths[0], path)
    embeddings = np.concatenate([emb for emb, _, _ in parts])
    ids = [i for _, shard_ids, _ in parts for i in shard_ids]
    return embeddings, ids, parts[0][2]


def check_compatible(meta_a: dict, meta_b: dict, name_a: str, name_b: str) -> None:
    """Embeddings from different models or of different size cannot be compared."""
    for key in ("dim", "model"):
        if meta_a.get(key) != meta_b.get(key):
            raise DataError(
                f"{name_a} and {name_b} differ in '{key}' ({meta_a.get(key)} vs {meta_b.get(key)}); "
                "encode queries and corpus with the same model"
            )


def build_index(embeddings: np.ndarray, index_type: str = "flat", nprobe: int = 32, hnsw_m: int = 32,
                ef_search: int = 256):
    """Inner-product FAISS index: exact (flat), or approximate (ivf, hnsw) for large corpora."""
    n, dim = embeddings.shape
    if index_type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = ef_search  # candidates kept per query: must exceed --depth
    else:  # ivf: about 4*sqrt(n) clusters, trained on the corpus itself
        n_lists = max(1, min(int(4 * n ** 0.5), n // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, n_lists, faiss.METRIC_INNER_PRODUCT)
        index.train(embeddings)
        index.nprobe = min(nprobe, n_lists)
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0 and index_type == "flat":
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(embeddings)
    return index


def search(index, queries: np.ndarray, depth: int, batch_size: int = 256):
    """(scores, row indices), each (n_queries, depth); -1 marks missing results."""
    depth = min(depth, index.ntotal)
    scores, rows = [], []
    for start in range(0, len(queries), batch_size):
        s, r = index.search(np.ascontiguousarray(queries[start:start + batch_size]), depth)
        scores.append(s)
        rows.append(r)
    return np.concatenate(scores), np.concatenate(rows)


def to_run(query_ids, doc_ids, scores, rows) -> dict:
    return {q: {doc_ids[j]: float(s) for s, j in zip(scores[i], rows[i]) if j >= 0}
            for i, q in enumerate(query_ids)}


def check_qrels_ids(qrels: dict, run: dict, doc_ids) -> None:
    """Warn (with counts) about judged queries not searched and judged docs not in the corpus.

    Both happen in real data (ArguAna's qrels name 5 documents its corpus lacks);
    such queries and documents count as misses, so the warning says how many.
    """
    unseen = sum(q not in run for q in qrels)
    if unseen:
        logger.warning("%d qrels queries have no results in the run (scored 0)", unseen)
    if doc_ids is not None:
        judged = {d for rels in qrels.values() for d, rel in rels.items() if rel > 0}
        absent = judged - set(doc_ids)
        if absent:
            logger.warning("%d relevant qrels documents are not in the corpus (e.g. %s): they cannot be found",
                           len(absent), sorted(absent)[0])


def report(run: dict, qrels_source, split: str, output_dir, name: str, extra: dict = None,
           doc_ids=None) -> dict:
    """Write <output_dir>/run.trec; with qrels, also metrics.json and a printed table."""
    output_dir = Path(output_dir)
    write_trec_run(output_dir / "run.trec", run, tag=name)
    if qrels_source is None:
        return {}
    qrels = load_qrels(qrels_source, split)
    check_qrels_ids(qrels, run, doc_ids)
    metrics = {"system": name, **evaluate(qrels, run), "queries": len(run), **(extra or {})}
    write_json(output_dir / "metrics.json", metrics)
    print(format_table([metrics], ["system", "MRR@10", "nDCG@10", "Recall@100"]))
    return metrics


def main(argv=None):
    args, = HfArgumentParser(SearchArguments).parse_args_into_dataclasses(args=argv)
    setup_logging()
    q_emb, q_ids, q_meta = load_embeddings(args.query_embeddings)
    p_emb, p_ids, p_meta = load_corpus_shards(args.corpus_embeddings)
    check_compatible(q_meta, p_meta, args.query_embeddings, args.corpus_embeddings)
    logger.info("searching %d queries over %d passages (%s index, depth %d)",
                len(q_ids), len(p_ids), args.index_type, args.depth)
    index = build_index(p_emb, args.index_type, args.nprobe, args.hnsw_m, max(args.ef_search, args.depth))
    scores, rows = search(index, q_emb, args.depth, args.batch_size)
    run = to_run(q_ids, p_ids, scores, rows)
    metrics = report(run, args.qrels, args.split, args.output_dir, args.name, doc_ids=p_ids)
    logger.info("wrote %s", Path(args.output_dir) / "run.trec")
    return metrics


if __name__ == "__main__":
    sys.exit(run_cli(main))

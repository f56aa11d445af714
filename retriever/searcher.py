"""Embeddings on disk and FAISS search over them: the library behind search and mine.

An encode output is one .npz: `embeddings` (n, dim) float32, `ids`, and `meta`
(the model, its weights' fingerprint, pooling, text format, shard, ...). Files are
searched together only when their meta says they belong together.
"""
import glob
import json
import zipfile
from pathlib import Path
from typing import Optional

import faiss
import numpy as np

from retriever.io import DataError, atomic_dir, atomic_write, read_jsonl, require_id, write_json
from retriever.ranking import Ranking
from retriever.spec import EmbeddingSpec


# What a missing embeddings file most often means: the step before search has not run.
ENCODE_FIRST = "encode first (python -m retriever.driver.encode, or run retriever/scripts/encode_fiqa.sh first)"


def save_embeddings(path, embeddings: np.ndarray, ids: list[str], meta: dict) -> None:
    with atomic_write(path, "wb") as f:
        np.savez(f, embeddings=embeddings, ids=np.array(ids, dtype=str), meta=json.dumps(meta))


def load_embeddings(path) -> tuple[np.ndarray, list[str], dict]:
    """(embeddings, ids, meta) of an encode output; a damaged file is named, with what to do."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such embeddings file; {ENCODE_FIRST}")
    try:
        with np.load(path) as data:
            embeddings, ids, meta = data["embeddings"], data["ids"].tolist(), json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a complete embeddings file ({type(e).__name__}: {e}); "
                        "was a copy or an encode cut short? Re-encode it") from None
    if embeddings.ndim != 2 or embeddings.shape[0] != len(ids) or embeddings.shape[1] != meta.get("dim"):
        raise DataError(f"{path}: embeddings of shape {embeddings.shape} do not match the file's {len(ids)} ids "
                        f"and dim {meta.get('dim')}; re-encode it")
    return embeddings, ids, meta


# What must be equal for two embedding files to be compared: the model (its path and its
# weights), and the spec's fields that change the vectors (EmbeddingSpec.reading).
COMPATIBLE_FIELDS = ("dim", "model", "weights", *EmbeddingSpec().reading())
# Shards of one corpus come from one encode: the kind matches too.
SHARD_FIELDS = COMPATIBLE_FIELDS + ("kind",)


def check_compatible(meta_a: dict, meta_b: dict, name_a: str, name_b: str, fields=COMPATIBLE_FIELDS) -> None:
    """Embeddings from different models, weights or settings cannot be compared."""
    for key in fields:
        if meta_a.get(key) != meta_b.get(key):
            raise DataError(
                f"{name_a} and {name_b} differ in '{key}' ({meta_a.get(key)} vs {meta_b.get(key)}); "
                "encode queries and corpus with the same model and settings"
            )


def load_corpus_shards(pattern: str) -> tuple[np.ndarray, list[str], dict]:
    """All shards of one corpus encode: every shard i of n once, from one model, no id twice."""
    if Path(pattern).is_file():  # an existing file, even with glob characters such as '[' in its name
        paths = [pattern]
    else:
        paths = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
    paths = [p for p in paths if Path(p).is_file()]
    if not paths:
        raise FileNotFoundError(f"no corpus embeddings match '{pattern}'; {ENCODE_FIRST}")
    parts = [load_embeddings(p) for p in paths]
    for path, (_, _, meta) in zip(paths, parts):
        if meta.get("kind") != "passage":
            raise DataError(f"{path} holds {meta.get('kind')} embeddings, not passages: are the query and "
                            "corpus files swapped?")
    for path, (_, _, meta) in zip(paths[1:], parts[1:]):
        check_compatible(parts[0][2], meta, paths[0], path, SHARD_FIELDS)
    shards = {path: tuple(meta.get("shard", (0, 1))) for path, (_, _, meta) in zip(paths, parts)}
    n_shards = {n for _, n in shards.values()}
    if n_shards != {len(paths)} or sorted(i for i, _ in shards.values()) != list(range(len(paths))):
        listed = ", ".join(f"{Path(p).name} = shard {i} of {n}" for p, (i, n) in shards.items())
        raise DataError(f"'{pattern}' does not hold one complete set of shards ({listed}): a stale shard of "
                        "an earlier encode? Remove the old files or encode into a new directory")
    ids = [i for _, shard_ids, _ in parts for i in shard_ids]
    if len(set(ids)) != len(ids):
        raise DataError(f"'{pattern}': the shards repeat passage ids: encode into a new directory")
    embeddings = np.concatenate([emb for emb, _, _ in parts])
    return embeddings, ids, parts[0][2]


def build_index(embeddings: np.ndarray, index_type: str = "flat", nprobe: int = 32, hnsw_m: int = 32,
                ef_search: int = 256, n_lists: Optional[int] = None, pq_m: int = 64, pq_nbits: int = 8):
    """Inner-product FAISS index: exact (flat), or approximate for large corpora: ivf (clusters, the vectors kept
    whole), ivfpq (clusters, each vector compressed to pq_m codes of pq_nbits bits: for corpora larger than memory)
    or hnsw (a graph)."""
    n, dim = embeddings.shape
    if index_type in ("ivf", "ivfpq"):
        n_lists = n_lists or max(1, min(int(4 * n ** 0.5), n // 39))  # about 4*sqrt(n) clusters
        if n_lists > n:
            raise ValueError(f"--n_lists {n_lists}: more clusters than the {n} vectors to index")
    if index_type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = ef_search  # candidates kept per query: must exceed --depth
    elif index_type == "ivf":  # trained on the corpus itself
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, n_lists, faiss.METRIC_INNER_PRODUCT)
    else:  # ivfpq
        if dim % pq_m:
            raise ValueError(f"--pq_m {pq_m} must divide the embedding dimension {dim} (each code covers dim / pq_m "
                             "numbers)")
        if n < 2 ** pq_nbits:
            raise ValueError(f"--pq_nbits {pq_nbits}: its {2 ** pq_nbits} centroids need at least as many vectors to "
                             f"train on; the corpus has {n} (lower --pq_nbits, or use --index_type flat)")
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, n_lists, pq_m, pq_nbits, faiss.METRIC_INNER_PRODUCT)
    if index_type in ("ivf", "ivfpq"):
        index.train(embeddings)
        index.nprobe = min(nprobe, n_lists)
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0 and index_type == "flat":
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(embeddings)
    return index


def index_params(index_args) -> dict:
    """The parameters of IndexArguments that build an index and search it, as build_index takes them."""
    return {name: getattr(index_args, name) for name in ("index_type", "nprobe", "hnsw_m", "n_lists", "pq_m",
                                                            "pq_nbits")}


def search(index, queries: np.ndarray, depth: int, batch_size: int = 256) -> Ranking:
    """The top `depth` passages of each query by inner product."""
    depth = min(depth, index.ntotal)
    scores, rows = [], []
    for start in range(0, len(queries), batch_size):
        s, r = index.search(np.ascontiguousarray(queries[start:start + batch_size]), depth)
        scores.append(s)
        rows.append(r)
    return Ranking(np.concatenate(scores), np.concatenate(rows))


def index_and_search(p_emb: np.ndarray, q_emb: np.ndarray, index_args, batch_size: int = 256, index_dir=None,
                     p_ids: Optional[list[str]] = None, p_meta: Optional[dict] = None,
                     docs: Optional[dict] = None) -> Ranking:
    """The index `index_args` asks for (IndexArguments: its type and parameters, depth) over the passage
    embeddings, searched with the queries; with `index_dir`, also saved there (save_index) with the passages'
    ids, how they were embedded (`p_meta`), the index's parameters and the texts. Search and evaluate both go
    through here."""
    params = index_params(index_args)
    index = build_index(p_emb, ef_search=max(index_args.ef_search, index_args.depth), **params)
    ranking = search(index, q_emb, index_args.depth, batch_size)
    if index_dir is not None:
        built = {"n_lists": index.nlist} if hasattr(index, "nlist") else {}
        save_index(index_dir, index, p_ids, {**p_meta, **params, "ef_search": index_args.ef_search, **built}, docs)
    return ranking


# ---- a saved index: FAISS file + what made it + the texts it shows ----------------------------
INDEX_FILE, INDEX_META_FILE, INDEX_DOCS_FILE = "index.faiss", "index_meta.json", "docs.jsonl"
INDEX_FORMAT = 1


def save_index(index_dir, index, doc_ids: list[str], meta: dict, docs: Optional[dict] = None) -> None:
    """Write a searchable index to index_dir: the FAISS index, its metadata (how the passages
    were embedded: model, weights fingerprint, pooling, text format; the index type) and, one a
    line in index order, each document's id, title and text. Written whole or not at all."""
    if index.ntotal != len(doc_ids):
        raise ValueError(f"the index holds {index.ntotal} vectors but {len(doc_ids)} ids were given")
    if "Gpu" in type(index).__name__:  # a GPU index is written as its CPU copy
        index = faiss.index_gpu_to_cpu(index)
    docs = docs or {}
    with atomic_dir(index_dir) as tmp:
        faiss.write_index(index, str(tmp / INDEX_FILE))
        write_json(tmp / INDEX_META_FILE, {"format": INDEX_FORMAT, "index_type": index_kind(index),
                                           "n_docs": len(doc_ids), **meta})
        with open(tmp / INDEX_DOCS_FILE, "w", encoding="utf-8") as f:
            for doc_id in doc_ids:
                doc = docs.get(doc_id, {})
                f.write(json.dumps({"_id": doc_id, "title": doc.get("title", ""), "text": doc.get("text", "")},
                                   ensure_ascii=False) + "\n")


def load_index(index_dir):
    """(FAISS index, doc ids, meta, {doc id: {"title", "text"}}) of a directory save_index wrote."""
    index_dir = Path(index_dir)
    missing = [name for name in (INDEX_FILE, INDEX_META_FILE, INDEX_DOCS_FILE) if not (index_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{index_dir}: not a saved index (no {', '.join(missing)}); write one with "
                                "python -m retriever.driver.evaluate (or search --save_index)")
    try:
        meta = json.loads((index_dir / INDEX_META_FILE).read_text(encoding="utf-8"))
    except ValueError as e:
        raise DataError(f"{index_dir / INDEX_META_FILE}: not readable as JSON ({e}); save the index again") from None
    if meta.get("format") != INDEX_FORMAT:
        raise DataError(f"{index_dir / INDEX_META_FILE}: index format {meta.get('format')!r}, this version reads "
                        f"{INDEX_FORMAT}; save the index again")
    docs, doc_ids = {}, []
    for line_no, record in read_jsonl(index_dir / INDEX_DOCS_FILE):
        doc_id = require_id(record, "_id", f"{index_dir / INDEX_DOCS_FILE}:{line_no}")
        doc_ids.append(doc_id)
        docs[doc_id] = {"title": record.get("title", ""), "text": record.get("text", "")}
    try:
        index = faiss.read_index(str(index_dir / INDEX_FILE))
    except RuntimeError as e:
        raise DataError(f"{index_dir / INDEX_FILE}: cannot be read as a FAISS index ({str(e).splitlines()[0]}); "
                        "save the index again") from None
    if index.ntotal != len(doc_ids) or meta.get("n_docs") != len(doc_ids):
        raise DataError(f"{index_dir}: the index holds {index.ntotal} vectors, {INDEX_DOCS_FILE} {len(doc_ids)} "
                        f"documents and the metadata says {meta.get('n_docs')}: save the index again")
    return index, doc_ids, meta, docs


def index_kind(index) -> str:
    """flat, ivf, ivfpq or hnsw: the kind of a FAISS index build_index made."""
    if isinstance(index, faiss.IndexHNSWFlat):
        return "hnsw"
    if isinstance(index, faiss.IndexIVFPQ):
        return "ivfpq"
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    return "flat"


def bytes_per_vector(index) -> float:
    """What one indexed vector costs in memory: the flat index's 4 x dim, an IVF-PQ code and its id, HNSW's vector
    and its links on the graph's base level."""
    if isinstance(index, faiss.IndexHNSW):
        return 4 * index.d + 4 * index.hnsw.nb_neighbors(0)
    if isinstance(index, faiss.IndexIVFPQ):
        return index.code_size + 8  # the codes, and an int64 id in its inverted list
    if isinstance(index, faiss.IndexIVF):
        return 4 * index.d + 8
    return 4 * index.d

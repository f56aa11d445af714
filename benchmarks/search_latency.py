"""Search latency: FAISS exact inner product vs NumPy matmul + argpartition; IVF/HNSW recall.

    python benchmarks/search_latency.py --n_docs 200000 --n_queries 1000 --dim 576
    python benchmarks/search_latency.py --n_docs 1000000 --dim 128 --approx --repeat 1

Data: unit vectors drawn around --clusters random centres (embeddings of real text
cluster by topic; uniform random vectors have no near neighbours to find), queries
are perturbed corpus vectors.
"""
import argparse
import time

import numpy as np

from retriever.searcher import build_index, search


def numpy_topk(queries, docs, k):
    scores = queries @ docs.T  # (n_queries, n_docs)
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n_docs", type=int, default=200_000)
    p.add_argument("--n_queries", type=int, default=1000)
    p.add_argument("--dim", type=int, default=576)
    p.add_argument("--depth", type=int, default=100)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3, help="timings are the best of this many runs")
    p.add_argument("--approx", action="store_true", help="also IVF and HNSW recall@depth vs exact")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((a.clusters, a.dim), dtype=np.float32)
    docs = np.empty((a.n_docs, a.dim), dtype=np.float32)
    for start in range(0, a.n_docs, 100_000):  # in blocks: keeps peak memory near the corpus size
        block = docs[start:start + 100_000]
        block[:] = centres[rng.integers(a.clusters, size=len(block))]
        block += 0.5 * rng.standard_normal(block.shape, dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    queries = docs[rng.choice(a.n_docs, a.n_queries)] + 0.1 * rng.standard_normal((a.n_queries, a.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    index = build_index(docs, "flat")
    t_faiss, (_, exact) = timed(lambda: search(index, queries, a.depth, batch_size=a.n_queries), a.repeat)
    t_numpy, np_rows = timed(lambda: numpy_topk(queries, docs, a.depth), a.repeat)
    same = np.mean([len(set(x) & set(y)) / a.depth for x, y in zip(exact, np_rows)])
    print(f"{a.n_queries} queries x {a.n_docs} docs x {a.dim} dims ({a.clusters} clusters), "
          f"top-{a.depth} (best of {a.repeat})")
    print(f"  FAISS IndexFlatIP : {t_faiss * 1000:8.1f} ms")
    print(f"  NumPy baseline    : {t_numpy * 1000:8.1f} ms   (same top-k: {same:.3f})")
    print(f"  speed-up          : {t_numpy / t_faiss:.2f}x")
    if a.approx:
        for kind in ("ivf", "hnsw"):
            start = time.perf_counter()
            approx_index = build_index(docs, kind)
            t_build = time.perf_counter() - start
            t_search, (_, rows) = timed(lambda: search(approx_index, queries, a.depth, batch_size=a.n_queries), 1)
            recall = np.mean([len(set(x) & set(y)) / a.depth for x, y in zip(exact, rows)])
            print(f"  {kind:5s}: build {t_build:6.1f} s, search {t_search * 1000:8.1f} ms "
                  f"({t_faiss / t_search:.2f}x exact), recall@{a.depth} vs exact {recall:.3f}")


if __name__ == "__main__":
    main()

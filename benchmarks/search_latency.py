"""Search latency: FAISS exact inner product vs NumPy matmul + argpartition; approximate indexes' recall and memory.

    python benchmarks/search_latency.py --n_docs 200000 --n_queries 1000 --dim 576
    python benchmarks/search_latency.py --n_docs 1000000 --dim 128 --approx ivf ivfpq hnsw --repeat 1
    python benchmarks/search_latency.py --n_docs 10000000 --dim 128 --approx ivfpq --no_numpy --repeat 1

Every approximate index is measured against the exact (flat) index of the same run: build time, search
time, recall@depth of the exact top-depth, and memory per vector (flat: 4 x dim bytes).

Data: unit vectors drawn around --clusters random centres (embeddings of real text
cluster by topic; uniform random vectors have no near neighbours to find), queries
are perturbed corpus vectors.
"""
import argparse
import time

import numpy as np

from retriever.searcher import build_index, bytes_per_vector, search


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
    p.add_argument("--approx", nargs="*", choices=["ivf", "ivfpq", "hnsw"], default=[],
                   help="approximate indexes measured against the exact one")
    p.add_argument("--pq_m", type=int, default=64, help="ivfpq: codes per vector")
    p.add_argument("--pq_nbits", type=int, default=8, help="ivfpq: bits per code")
    p.add_argument("--nprobe", type=int, default=32, help="ivf, ivfpq: clusters visited per query")
    p.add_argument("--no_numpy", action="store_true", help="skip the NumPy baseline (its score matrix needs "
                   "n_queries x n_docs x 4 bytes)")
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

    start = time.perf_counter()
    index = build_index(docs, "flat")
    t_flat_build = time.perf_counter() - start
    t_faiss, (_, exact) = timed(lambda: search(index, queries, a.depth, batch_size=a.n_queries), a.repeat)
    print(f"{a.n_queries} queries x {a.n_docs} docs x {a.dim} dims ({a.clusters} clusters), "
          f"top-{a.depth} (best of {a.repeat})")
    print(f"  flat (exact): build {t_flat_build:6.1f} s, search {t_faiss * 1000:8.1f} ms, "
          f"{bytes_per_vector(index):.0f} bytes/vector ({bytes_per_vector(index) * a.n_docs / 2 ** 30:.2f} GiB)")
    if not a.no_numpy:
        t_numpy, np_rows = timed(lambda: numpy_topk(queries, docs, a.depth), a.repeat)
        same = np.mean([len(set(x) & set(y)) / a.depth for x, y in zip(exact, np_rows)])
        print(f"  NumPy baseline: search {t_numpy * 1000:8.1f} ms (same top-k: {same:.3f}); FAISS flat "
              f"{t_numpy / t_faiss:.2f}x faster")
    del index
    for kind in a.approx:
        start = time.perf_counter()
        approx_index = build_index(docs, kind, nprobe=a.nprobe, pq_m=a.pq_m, pq_nbits=a.pq_nbits)
        t_build = time.perf_counter() - start
        t_search, (_, rows) = timed(lambda: search(approx_index, queries, a.depth, batch_size=a.n_queries), 1)
        recall = np.mean([len(set(x) & set(y)) / a.depth for x, y in zip(exact, rows)])
        size = bytes_per_vector(approx_index)
        params = {"ivf": f"nlist {approx_index.nlist if kind != 'hnsw' else 0}, nprobe {a.nprobe}",
                  "ivfpq": f"nlist {getattr(approx_index, 'nlist', 0)}, nprobe {a.nprobe}, m {a.pq_m}, "
                           f"nbits {a.pq_nbits}", "hnsw": "M 32, efSearch 256"}[kind]
        print(f"  {kind:5s} ({params}): build {t_build:6.1f} s, search {t_search * 1000:8.1f} ms "
              f"({t_faiss / t_search:.2f}x exact), recall@{a.depth} vs exact {recall:.3f}, "
              f"{size:.0f} bytes/vector ({size / (4 * a.dim):.3f}x flat; {size * a.n_docs / 2 ** 30:.2f} GiB)")
        del approx_index


if __name__ == "__main__":
    main()

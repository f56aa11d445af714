"""Hybrid retrieval: fuse the rankings of two (or more) systems into one run.

- minmax (the default): each run's scores rescaled to [0, 1] per query, then summed
  (CombSUM of min-max-normalised scores); a document missing from a run gets 0 from
  it. It keeps each system's confidence: a dense top hit that barely beats the
  next adds little, a clear BM25 winner stays on top.
- rrf: reciprocal-rank fusion, score(d) = sum over runs of 1 / (k + rank(d)), rank 1 =
  best, k = 60 (Cormack, Clarke & Büttcher, 2009). It reads ranks only, so it needs no
  score calibration, but it weighs every run's rank r alike: fusing a strong system
  with a much weaker one can land below the strong one alone.
Neither has a weight to tune on test data.
"""
from retriever.metrics import Run

FUSION_METHODS = ("minmax", "rrf")


def ranked(docs: dict[str, float]) -> list[str]:
    """Doc ids best first; ties broken by id so fusion is deterministic."""
    return sorted(docs, key=lambda d: (-docs[d], d))


def reciprocal_rank_fusion(runs: list[Run], k: float = 60.0) -> Run:
    fused: Run = {}
    for run in runs:
        for query_id, docs in run.items():
            scores = fused.setdefault(query_id, {})
            for rank, doc_id in enumerate(ranked(docs), start=1):
                scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    return fused


def minmax_fusion(runs: list[Run]) -> Run:
    fused: Run = {}
    for run in runs:
        for query_id, docs in run.items():
            scores = fused.setdefault(query_id, {})
            low, high = min(docs.values(), default=0.0), max(docs.values(), default=0.0)
            span = high - low
            for doc_id, s in docs.items():
                scores[doc_id] = scores.get(doc_id, 0.0) + ((s - low) / span if span > 0 else 1.0)
    return fused


def fuse(runs: list[Run], method: str = "minmax", k: float = 60.0, depth: int = 100) -> Run:
    """One run from several: each query's top `depth` fused documents."""
    if method not in FUSION_METHODS:
        raise ValueError(f"--method must be one of {', '.join(FUSION_METHODS)}; got '{method}'")
    fused = reciprocal_rank_fusion(runs, k) if method == "rrf" else minmax_fusion(runs)
    return {q: {d: docs[d] for d in ranked(docs)[:depth]} for q, docs in fused.items()}

"""Retrieval metrics (MRR@10, nDCG@10, Recall@100) and TREC run files.

Metrics are computed by `ir_measures` (pytrec_eval underneath), never by hand.
"""
import logging

import ir_measures
from ir_measures import R, RR, nDCG

from retriever.io import DataError, atomic_write

logger = logging.getLogger(__name__)

# Report name -> ir_measures measure. RR@10 is MRR@10 once averaged over queries.
MEASURES = {"MRR@10": RR @ 10, "nDCG@10": nDCG @ 10, "Recall@100": R @ 100}

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def evaluate(qrels: Qrels, run: Run) -> dict[str, float]:
    """Mean of each measure over the queries that have at least one relevant document.

    Queries in the run without judgements are left out (and counted in a warning);
    judged queries missing from the run count as zero.
    """
    judged = {q: docs for q, docs in qrels.items() if any(rel > 0 for rel in docs.values())}
    if not judged:
        raise DataError("qrels hold no relevant document for any query")
    unjudged = len(set(run) - set(judged))
    if unjudged:
        logger.warning("%d queries in the run have no relevant document in the qrels; not scored", unjudged)
    run = {q: docs for q, docs in run.items() if q in judged}
    per_query = {name: {q: 0.0 for q in judged} for name in MEASURES}
    by_measure = {measure: name for name, measure in MEASURES.items()}
    for m in ir_measures.iter_calc(list(MEASURES.values()), judged, run):
        per_query[by_measure[m.measure]][m.query_id] = m.value
    return {name: sum(values.values()) / len(values) for name, values in per_query.items()}


def write_trec_run(path, run: Run, tag: str = "retriever") -> None:
    tag = "_".join(tag.split()) or "retriever"  # the run tag is one whitespace-free field
    with atomic_write(path) as f:
        for query_id, docs in run.items():
            ranked = sorted(docs.items(), key=lambda kv: -kv[1])
            for rank, (doc_id, score) in enumerate(ranked, start=1):
                f.write(f"{query_id} Q0 {doc_id} {rank} {score:.6f} {tag}\n")


def read_trec_run(path) -> Run:
    run: Run = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise DataError(f"{path}:{line_no}: a TREC run line has 6 fields, got {len(fields)}")
            try:
                score = float(fields[4])
            except ValueError:
                raise DataError(f"{path}:{line_no}: field 'score' is not a number: {fields[4]!r}") from None
            run.setdefault(fields[0], {})[fields[2]] = score
    return run


def format_table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table; floats to 4 places."""
    def cell(v):
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)

"""Retrieval metrics (MRR@10, nDCG@10, Recall@100), TREC run files, and the evaluation report.

Metrics are computed by `ir_measures` (pytrec_eval underneath), never by hand.
"""
import logging
import math
from pathlib import Path

import ir_measures
from ir_measures import R, RR, nDCG

from retriever.io import DataError, atomic_write, write_json

logger = logging.getLogger(__name__)

# Report name -> ir_measures measure. RR@10 is MRR@10 once averaged over queries.
MEASURES = {"MRR@10": RR @ 10, "nDCG@10": nDCG @ 10, "Recall@100": R @ 100}

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def per_query_scores(qrels: Qrels, run: Run) -> dict[str, dict[str, float]]:
    """{measure: {query id: value}} over the queries that have at least one relevant document.

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
    return per_query


def means(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    """{measure: mean over the queries} of per_query_scores' values."""
    return {name: sum(values.values()) / len(values) for name, values in per_query.items()}


def evaluate(qrels: Qrels, run: Run) -> dict[str, float]:
    """Mean of each measure over the judged queries (see per_query_scores)."""
    return means(per_query_scores(qrels, run))


# The per-query values kept in metrics.json, for paired significance tests between systems.
PER_QUERY = "nDCG@10"


SIGNIFICANCE_LEVEL = 0.05


def paired_test(system: dict[str, float], baseline: dict[str, float]) -> tuple[float, float, int]:
    """(mean difference, two-sided p-value, number of queries) of a paired t-test of two
    systems' per-query scores over the queries both were scored on (scipy's ttest_rel; the
    test ranx's `compare` runs by default). p is 1.0 when the scores never differ."""
    from scipy.stats import ttest_rel

    queries = sorted(set(system) & set(baseline))
    a, b = [system[q] for q in queries], [baseline[q] for q in queries]
    difference = (sum(a) - sum(b)) / len(queries) if queries else float("nan")
    if len(queries) < 2 or all(x == y for x, y in zip(a, b)):
        return difference, 1.0, len(queries)
    return difference, float(ttest_rel(a, b).pvalue), len(queries)


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
            if not math.isfinite(score):  # min-max fusion would turn it into 1.0 for every document
                raise DataError(f"{path}:{line_no}: field 'score' is {fields[4]}; re-run the system that wrote it")
            run.setdefault(fields[0], {})[fields[2]] = score
    if not run:
        raise DataError(f"{path}: holds no results (an empty run file: did its system fail?)")
    return run


def format_table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table; floats to 4 places."""
    def cell(v):
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


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
    from retriever.data import load_qrels

    qrels = load_qrels(qrels_source, split)
    check_qrels_ids(qrels, run, doc_ids)
    scores = per_query_scores(qrels, run)
    metrics = {"system": name, **means(scores), "queries": len(run), **(extra or {}),
               "per_query": {PER_QUERY: scores[PER_QUERY]}}
    write_json(output_dir / "metrics.json", metrics)
    print(format_table([metrics], ["system", "MRR@10", "nDCG@10", "Recall@100"]))
    return metrics

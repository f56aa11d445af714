"""driver.report: one table per set, query counts, paired significance against the baseline, named errors."""
import json
import re

import pytest

from retriever.driver import report, run_cli
from retriever.metrics import paired_test


def test_paired_test_on_a_hand_computed_example():
    # differences 1, 1, 2, 2: mean 1.5, sd 0.5774, t = 5.196 with 3 degrees of freedom -> two-sided p = 0.01385
    difference, p, n = paired_test({"a": 1, "b": 2, "c": 3, "d": 4, "only-here": 9}, {"a": 0, "b": 1, "c": 1, "d": 2})
    assert (difference, n) == (1.5, 4) and p == pytest.approx(0.013847, abs=1e-6)
    assert paired_test({"a": 1, "b": 2}, {"a": 1, "b": 2}) == (0.0, 1.0, 2)


def write_metrics(path, name, per_query):
    path.mkdir(parents=True)
    values = list(per_query.values())
    path.joinpath("metrics.json").write_text(json.dumps({
        "system": name, "MRR@10": 0.5, "nDCG@10": sum(values) / len(values), "Recall@100": 1.0,
        "queries": len(values), "per_query": {"nDCG@10": per_query}}))


def test_report_marks_significant_differences_from_the_baseline_and_shows_query_counts(tmp_path, capsys):
    queries = [f"q{i}" for i in range(30)]
    write_metrics(tmp_path / "s" / "bm25", "BM25", {q: 0.5 for q in queries})
    write_metrics(tmp_path / "s" / "better", "better", {q: 0.5 + (0.2 if i % 3 else 0.1) for i, q in enumerate(queries)})
    write_metrics(tmp_path / "s" / "noise", "noise", {q: 0.5 + (0.1 if i % 2 else -0.1) for i, q in enumerate(queries)})
    rows = report.main(["--run_dir", str(tmp_path), "--sets", "s", "--systems", "bm25", "better", "noise"])
    marks = {r["system"]: r["nDCG@10 vs bm25"] for r in rows}
    assert marks["BM25"] == "(baseline)"
    assert marks["better"].startswith("+0.1667 (p < 0.001, 30 q) **significant**")
    assert marks["noise"] == "+0.0000 (p = 1.000, 30 q)"
    table = (tmp_path / "report.md").read_text()
    assert "| queries | nDCG@10 vs bm25 |" in table and "| 30 |" in table
    assert "per_query" not in json.loads((tmp_path / "report.json").read_text())[0]


def test_report_names_a_cut_short_metrics_file_and_a_times_value_without_equals(tmp_path, capsys):
    # reliability round 3, case 14
    write_metrics(tmp_path / "bm25", "BM25", {"q": 0.5})
    (tmp_path / "dense").mkdir()
    (tmp_path / "dense" / "metrics.json").write_text('{"system": "dense", "MRR@10": 0.5')
    assert run_cli(lambda: report.main(["--run_dir", str(tmp_path), "--systems", "bm25", "dense"])) == 2
    assert f"{tmp_path / 'dense' / 'metrics.json'}: not readable as JSON" in capsys.readouterr().err
    assert run_cli(lambda: report.main(["--run_dir", str(tmp_path), "--systems", "bm25", "--times", "bm25"])) == 2
    assert "--times: 'bm25' is not KEY=VALUE" in capsys.readouterr().err


def test_report_opens_with_the_date_and_machine_and_marks_rows_read_from_the_embedding_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "describe_machine", lambda: "Some CPU, 2 cores (AVX2), no NVIDIA GPU")
    queries = {f"q{i}": 0.5 for i in range(3)}
    for system, reused in (("bm25", None), ("zero", ["passage", "query"]), ("half", ["passage"]), ("dense", [])):
        write_metrics(tmp_path / system, system, queries)
        if reused is not None:
            metrics = json.loads((tmp_path / system / "metrics.json").read_text())
            (tmp_path / system / "metrics.json").write_text(json.dumps({**metrics, "reused_embeddings": reused}))
    report.main(["--run_dir", str(tmp_path), "--systems", "bm25", "zero", "half", "dense", "--times", "bm25=1",
                 "zero=2", "half=3", "dense=4", "--title", "T", "--summary", "It took 9 s."])
    md = (tmp_path / "report.md").read_text()
    assert re.match(r"# T\n\nRun on \d{4}-\d\d-\d\d \(UTC\) on Some CPU, 2 cores \(AVX2\), no NVIDIA GPU\. "
                    r"It took 9 s\.\n", md)
    rows = [line for line in md.splitlines() if line.startswith("| ") and "system" not in line]
    cells = [row.rsplit("|", 2)[1].strip() for row in rows]  # the last column: seconds
    assert cells == ["1", "2 (cached)", "3 (passage embeddings cached)", "4"]
    assert "(cached): that row's embeddings were read from $RETRIEVER_CACHE/embeddings" in md
    assert [r["seconds"] for r in json.loads((tmp_path / "report.json").read_text())] == [1, 2, 3, 4]  # numbers


def test_describe_machine_names_the_cpu_its_cores_and_vector_units():
    described = report.describe_machine()
    assert re.fullmatch(r".+, \d+ cores( \([A-Z0-9, -]+\))?, (GPU: .+|no NVIDIA GPU)", described), described


def test_systems_scored_on_other_queries_than_the_baseline_are_said_to_be_in_the_table(tmp_path):
    # reliability round 4, case 10: 14 and 7 queries side by side, with no word
    queries = [f"q{i}" for i in range(14)]
    write_metrics(tmp_path / "bm25", "BM25", {q: 0.5 for q in queries})
    write_metrics(tmp_path / "half", "half", {q: 0.9 for q in queries[:7]})
    write_metrics(tmp_path / "same", "same", {q: 0.6 for q in queries})
    rows = report.main(["--run_dir", str(tmp_path), "--systems", "bm25", "half", "same"])
    marks = {r["system"]: r["nDCG@10 vs bm25"] for r in rows}
    assert marks["half"].endswith("; **other queries**: 7 scored here, 14 for bm25, compared on the 7 in common")
    assert "other queries" not in marks["same"]
    assert "**other queries**: 7 scored here, 14 for bm25" in (tmp_path / "report.md").read_text()

import json

import pytest

from retriever.driver import fuse
from retriever.metrics import evaluate, write_trec_run


def test_fuse_driver_writes_and_evaluates_the_hybrid_run(tiny_beir, tmp_path):
    # two runs that each find half of the relevant documents at rank 1; fused, both are found
    qrels = {f"q{t}-{k}": f"d{t}-{k}" for t in range(7) for k in range(2)}
    first = {q: ({d: 2.0, "d0-3": 1.0} if k % 2 else {"d0-3": 2.0, d: 1.0})
             for q, d in qrels.items() for k in [int(q[-1])]}
    second = {q: ({"d1-3": 2.0, d: 1.5} if k % 2 else {d: 2.0, "d1-3": 1.0})
              for q, d in qrels.items() for k in [int(q[-1])]}
    write_trec_run(tmp_path / "a.trec", first)
    write_trec_run(tmp_path / "b.trec", second)
    metrics = fuse.main(["--runs", str(tmp_path / "a.trec"), str(tmp_path / "b.trec"), "--qrels", str(tiny_beir),
                         "--output_dir", str(tmp_path / "hybrid"), "--name", "hybrid", "--method", "rrf"])
    assert metrics["system"] == "hybrid" and metrics["fusion"] == "rrf"
    judged = {q: {d: 1} for q, d in qrels.items()}
    assert evaluate(judged, first)["MRR@10"] == evaluate(judged, second)["MRR@10"] == pytest.approx(0.75)
    assert metrics["MRR@10"] == pytest.approx(1.0)  # every relevant doc is in both runs: fused, it is first
    assert json.loads((tmp_path / "hybrid" / "metrics.json").read_text())["MRR@10"] == metrics["MRR@10"]
    assert (tmp_path / "hybrid" / "run.trec").is_file()


def test_fuse_needs_two_runs():
    with pytest.raises(ValueError, match="at least two run files"):
        fuse.main(["--runs", "only.trec"])


# Reliability round 3, cases 6, 7 and 13: a fused run is never silently one run, or fused over other queries.
def test_an_empty_run_file_is_refused_naming_it(tmp_path, capsys):
    write_trec_run(tmp_path / "a.trec", {"q1": {"d1": 1.0}})
    (tmp_path / "b.trec").write_text("")
    from retriever.driver import run_cli

    assert run_cli(lambda: fuse.main(["--runs", str(tmp_path / "a.trec"), str(tmp_path / "b.trec"),
                                      "--output_dir", str(tmp_path / "h")])) == 2
    assert f"{tmp_path / 'b.trec'}: holds no results" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()


def test_a_nan_score_in_a_run_is_refused_naming_its_line(tmp_path):
    write_trec_run(tmp_path / "a.trec", {"q1": {"d1": 1.0, "d2": 0.5}})
    (tmp_path / "b.trec").write_text("q1 Q0 d1 1 0.9 x\nq1 Q0 d2 2 nan x\n")
    from retriever.io import DataError

    with pytest.raises(DataError, match=r"b.trec:2: field 'score' is nan"):
        fuse.main(["--runs", str(tmp_path / "a.trec"), str(tmp_path / "b.trec"), "--output_dir", str(tmp_path / "h")])


def test_runs_over_different_queries_are_refused_unless_allowed(tmp_path):
    write_trec_run(tmp_path / "a.trec", {"q1": {"d1": 1.0}, "q2": {"d2": 1.0}})
    write_trec_run(tmp_path / "b.trec", {"q1": {"d1": 2.0}, "q3": {"d3": 1.0}})
    from retriever.io import DataError

    runs = ["--runs", str(tmp_path / "a.trec"), str(tmp_path / "b.trec"), "--output_dir", str(tmp_path / "h")]
    with pytest.raises(DataError, match=r"cover different queries \(1 only in the first, 1 only in the second, e.g. 'q2'\)"):
        fuse.main(runs)
    fuse.main(runs + ["--allow_different_queries", "True"])
    assert {line.split()[0] for line in (tmp_path / "h" / "run.trec").read_text().splitlines()} == {"q1", "q2", "q3"}


def test_a_run_fused_with_itself_is_refused_by_path_or_by_content(tmp_path, capsys):
    # reliability round 4, case 4: --runs A A was reported as a hybrid without a word
    from retriever.driver import run_cli

    write_trec_run(tmp_path / "a.trec", {"q1": {"d1": 1.0, "d2": 0.5}})
    (tmp_path / "copy.trec").write_text((tmp_path / "a.trec").read_text())
    for runs in ([tmp_path / "a.trec", tmp_path / "a.trec"], [tmp_path / "a.trec", tmp_path / "sub" / ".." / "a.trec"],
                 [tmp_path / "a.trec", tmp_path / "copy.trec"]):
        (tmp_path / "sub").mkdir(exist_ok=True)
        assert run_cli(lambda: fuse.main(["--runs", *map(str, runs), "--output_dir", str(tmp_path / "h")])) == 2
        assert "fusing a run with itself is not a hybrid" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()

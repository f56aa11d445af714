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

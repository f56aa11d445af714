"""driver.bm25: a run and its metrics for a BEIR directory."""
import json

from retriever.driver import bm25


def test_bm25_driver_writes_run_and_metrics_of_the_split(tiny_beir, tmp_path):
    metrics = bm25.main(["--data_dir", str(tiny_beir), "--output_dir", str(tmp_path)])
    assert metrics["queries"] == 14 and 0 < metrics["nDCG@10"] <= 1
    assert json.loads((tmp_path / "metrics.json").read_text())["system"] == "BM25"
    assert len({line.split()[0] for line in (tmp_path / "run.trec").read_text().splitlines()}) == 14

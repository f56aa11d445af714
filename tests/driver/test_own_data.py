"""The root README's "Your own data" commands, run as written on a tiny BEIR folder."""
import json
import re

from tests.conftest import run_readme_tiny


def test_own_data_path_runs_as_written_from_a_beir_folder_to_a_query(tiny_model_dir, tiny_beir, tmp_path):
    project, done = run_readme_tiny("README.md", "## Your own data", tmp_path, tiny_beir, tiny_model_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    out = project / "runs" / "own"
    rows = json.loads((out / "eval" / "report.json").read_text())
    assert [r["dir"] for r in rows] == ["bm25", "model"] and rows[0]["queries"] == rows[1]["queries"] == 14
    assert re.search(r"\(p [=<] ", rows[1]["nDCG@10 vs bm25"])
    assert "  1  d" in done.stdout  # the query printed its first hit
    assert (out / "model" / "modules.json").is_file()  # the model leaves as a sentence-transformers model

"""The root README's "Your own data" commands and docs/own-data.md's next ones, run as written on a tiny BEIR folder."""
import json
import re

from tests.conftest import readme_commands, run_readme_tiny


def test_own_data_path_runs_as_written_from_a_beir_folder_to_a_query(tiny_model_dir, tiny_beir, tmp_path):
    # the README's block, then docs/own-data.md's (MiniLM, a hybrid, one table of four, questions from a file)
    more = readme_commands("docs/own-data.md", "## Several sets, the off-the-shelf embedder")
    project, done = run_readme_tiny("README.md", "## Your own data", tmp_path, tiny_beir, tiny_model_dir, more)
    assert done.returncode == 0, done.stderr[-3000:]
    out = project / "runs" / "own"
    assert done.stdout.count("| nDCG@10 vs bm25 |") == 2  # the README's table of two, then the table of four
    rows = json.loads((out / "eval" / "report.json").read_text())
    assert [r["dir"] for r in rows] == ["bm25", "minilm", "model", "hybrid"]
    assert all(r["queries"] == 14 for r in rows) and rows[1]["nDCG@10"] > 0.5  # the real MiniLM on the tiny set
    assert all(re.search(r"\(p [=<] ", r["nDCG@10 vs bm25"]) for r in rows[1:])
    assert "  1  d" in done.stdout  # the query printed its first hit
    assert (out / "model" / "modules.json").is_file()  # the model leaves as a sentence-transformers model
    hits = [json.loads(line) for line in (out / "hits.jsonl").read_text().splitlines()]
    assert [h["rank"] for h in hits] == [1, 2, 3, 1, 2, 3] and hits[3]["query"] == "Does vitamin D prevent colds?"

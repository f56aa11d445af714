"""The root README's "Your own data" commands, run as written on a tiny BEIR folder."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def own_data_commands() -> str:
    section = (REPO / "README.md").read_text().split("## Your own data", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)


def test_own_data_path_runs_as_written_from_a_beir_folder_to_a_query(tiny_model_dir, tiny_beir, tmp_path):
    data = tmp_path / "my-set"
    shutil.copytree(tiny_beir, data)
    shutil.copy(data / "qrels" / "test.tsv", data / "qrels" / "train.tsv")
    project = tmp_path / "project"
    project.mkdir()
    (project / "retriever").symlink_to(REPO / "retriever")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
           "DATA": str(data), "MODEL": tiny_model_dir, "MAX_STEPS": "2", "QUERY_MAX_LEN": "24",
           "PASSAGE_MAX_LEN": "32"}
    env.pop("PYTHON", None)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", own_data_commands()], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = project / "runs" / "own"
    rows = json.loads((out / "eval" / "report.json").read_text())
    assert [r["dir"] for r in rows] == ["bm25", "model"] and rows[0]["queries"] == rows[1]["queries"] == 14
    assert "(p = " in rows[1]["nDCG@10 vs bm25"]
    assert "  1  d" in done.stdout  # the query printed its first hit
    assert (out / "model" / "modules.json").is_file()  # the model leaves as a sentence-transformers model

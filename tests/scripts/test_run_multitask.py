"""retriever/scripts/run_multitask.sh: single-task and multi-task models trained from one recipe file,
each evaluated on every task, on tiny data."""
import json
import os
import shutil
import subprocess
import sys

from tests.conftest import REPO


def test_run_multitask_trains_every_model_from_its_recipe_and_reports_each_task(tiny_model_dir, tiny_beir, tmp_path):
    root = tmp_path / "data"
    for task in ("alpha", "beta"):  # two tasks: tiny_beir twice, each with a train split
        shutil.copytree(tiny_beir, root / task)
        shutil.copy(root / task / "qrels" / "test.tsv", root / task / "qrels" / "train.tsv")
    recipe = tmp_path / "recipe.json"  # the script's recipe, made tiny
    recipe.write_text(json.dumps({**json.loads((REPO / "retriever/recipes/multitask_cpu.json").read_text()),
                                  "model_name_or_path": tiny_model_dir, "lora": False, "query_max_len": 12,
                                  "passage_max_len": 16, "per_device_train_batch_size": 4}))
    env = {**os.environ, "PYTHON": sys.executable, "DATA_ROOT": str(root), "TASKS": "alpha beta",
           "RUN_DIR": str(tmp_path / "run"), "RECIPE": str(recipe), "MAX_STEPS": "2", "EVAL_QUERIES": "6",
           "EVAL_DOCS": "12", "RETRIEVER_IN_PROCESS": "1"}  # the stages without their processes' start
    done = subprocess.run(["bash", str(REPO / "retriever" / "scripts" / "run_multitask.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    # the multi-task model: both tasks' groups, their instructions in its spec, twice the steps
    spec = json.loads((run / "model-multitask" / "embedding_spec.json").read_text())
    assert spec["task_instructions"]["beta"] == {"query_prefix": "beta question: ", "passage_prefix": "beta document: "}
    assert spec["pooling"] == "mean" and spec["base_model"] == tiny_model_dir  # the recipe's
    steps = [e["step"] for e in json.loads((run / "model-multitask" / "train_log.json").read_text()) if "loss" in e]
    assert steps[-1] == 4 and "data=Tevatron" not in done.stdout
    rows = json.loads((run / "report.json").read_text())
    assert {(r["set"], r["dir"]) for r in rows} == {(task, system) for task in ("alpha", "beta") for system in
                                                   ("bm25", "model-alpha", "model-beta", "model-multitask")}
    assert all(0 <= r["nDCG@10"] <= 1 for r in rows)
    assert "multi-task vs single-task" in (run / "report.md").read_text()

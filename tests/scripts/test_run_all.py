"""retriever.driver.run_all through retriever/scripts/run_all.sh: the whole offline pipeline on tiny data, and its
errors."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_run_all_trains_evaluates_reranks_mines_round_2_and_reports(tiny_model_dir, tiny_arch_dirs, tiny_beir,
                                                                     echo_beir, tmp_path):
    # A BEIR dir with train and test qrels (the train split reuses the test queries: a smoke test), and one
    # held-out set (echo_beir, whole: 28 docs, 7 queries).
    data = tmp_path / "tinyset"
    shutil.copytree(tiny_beir, data)
    # and a query sharing no word with any document: BM25 retrieves nothing for it, and the pipeline goes on
    with open(data / "queries.jsonl", "a") as f:
        f.write(json.dumps({"_id": "q-none", "text": "xylophone quasar"}) + "\n")
    with open(data / "qrels" / "test.tsv", "a") as f:
        f.write("q-none\td0-0\t1\n")
    shutil.copyfile(data / "qrels" / "test.tsv", data / "qrels" / "train.tsv")
    tiny = {"model_name_or_path": tiny_model_dir, "max_steps": 2, "per_device_train_batch_size": 4,
            "query_max_len": 16, "passage_max_len": 20, "lora": False}
    reranker_recipe = tmp_path / "reranker.json"  # the demo's re-ranker recipe, made tiny
    reranker_recipe.write_text(json.dumps({**json.loads((REPO / "retriever/recipes/reranker_cpu.json").read_text()),
                                           **tiny}))
    encoder_recipe = tmp_path / "encoder.json"  # the embedder's recipe, on a tiny BERT
    encoder_recipe.write_text(json.dumps({**json.loads((REPO / "retriever/recipes/encoder_cpu.json").read_text()),
                                          **tiny, "model_name_or_path": tiny_arch_dirs["bert"]}))
    env = {**os.environ, "PYTHON": sys.executable, "DATA": str(data),
           "TRAIN_ARGS": " ".join(f"--{flag} {value}" for flag, value in tiny.items()),
           "RERANKER_RECIPE": str(reranker_recipe), "ENCODER_RECIPE": str(encoder_recipe), "ZERO_SHOT_POOLINGS": "last",
           "RUN_DIR": str(tmp_path / "run"), "HOLDOUT": str(echo_beir), "HOLDOUT_QUERIES": "0",
           "HOLDOUT_DOCS": "0", "EVAL_DOCS": "20",
           "MINILM": tiny_arch_dirs["bert"], "MINILM_MAX_LEN": "16",
           "RERANK": "1", "RERANK_DEPTH": "5", "ROUND2": "1", "MINE_QUERIES": "6", "MINE_DOCS": "20",
           "DEV_SET": str(data), "DEV_SPLIT": "test", "DEV_QUERIES": "6", "DEV_DOCS": "12",
           "RETRIEVER_CACHE": str(tmp_path / "cache"),  # an empty embedding cache: every row is encoded
           "RETRIEVER_IN_PROCESS": "1"}  # the stages without their processes' start (retriever/pipeline.py)
    done = subprocess.run(["bash", str(REPO / "retriever" / "scripts" / "run_all.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    # every stage is a driver command, printed and kept in commands.sh: the training with the recipe file and
    # TRAIN_ARGS after it, every model row with driver.evaluate
    commands = (tmp_path / "run" / "commands.sh").read_text().splitlines()[1:]
    assert all(line in done.stdout for line in commands) and "MRR@10" in done.stdout
    train = next(line for line in commands if line.startswith("python -m retriever.driver.train "))
    assert train.startswith("python -m retriever.driver.train --recipe demo_cpu ")
    assert train.index("--recipe") < train.index("--per_device_train_batch_size 4")
    # one evaluate process (one model load) per model over both sets: each row encodes its corpus once
    for texts in ("20 passage", "28 passage", "7 query"):  # zero-shot, fine-tuned, MiniLM, the embedder, round 2
        assert done.stderr.count(f"INFO __main__: encoding {texts} texts") == 5, texts
    assert sum(line.startswith("python -m retriever.driver.evaluate ") for line in commands) == 5
    encoder = next(line for line in commands if "--output_dir " + str(tmp_path / "run" / "encoder") in line)
    assert f"--recipe {encoder_recipe}" in encoder and "--per_device_train_batch_size" not in encoder  # no TRAIN_ARGS
    assert encoder.endswith(" --num_train_epochs 1")  # the demo's one epoch, after the recipe
    assert (tmp_path / "run" / "tinyset" / "finetuned" / "index" / "index.faiss").is_file()
    rows = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [r["set"] for r in rows] == ["tinyset"] * 10 + [echo_beir.name] * 10  # every system on both sets
    held_out = rows[10:]
    rows = rows[:10]
    embedder = Path(tiny_arch_dirs["bert"]).name
    assert [r["system"] for r in rows] == ["BM25", "zero-shot (last)", "fine-tuned (last)", "MiniLM (all-MiniLM-L6-v2)",
                                           f"{embedder} fine-tuned (mean)",
                                           "hybrid (BM25 + fine-tuned, minmax)", "hybrid (BM25 + fine-tuned, rrf)",
                                           "hybrid (BM25 + fine-tuned embedder, minmax)", "fine-tuned+re-ranker@5",
                                           "fine-tuned round 2 (last)"]
    assert all(r["set"] == "tinyset" and 0 <= r["nDCG@10"] <= 1 and r["seconds"] >= 0 for r in rows)
    assert [r["system"] for r in held_out] == [r["system"] for r in rows]
    assert all(0 <= r["nDCG@10"] <= 1 and r["seconds"] >= 0 for r in held_out)
    for part in (rows, held_out):  # a hybrid row's seconds include the fine-tuned row it fuses
        assert part[5]["seconds"] >= part[2]["seconds"] and part[6]["seconds"] >= part[2]["seconds"]
        assert part[7]["seconds"] >= part[4]["seconds"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## tinyset" in report and "| nDCG@10 vs bm25 |" in report and "| queries |" in report
    # the report says when, on what and how long, and that no row was read from the cache
    assert re.search(r"\nRun on \d{4}-\d\d-\d\d \(UTC\) on .+, \d+ cores.*\. run_all: \d+ s from its start to "
                     r"this report \(training \d+ s, the embedder's \d+ s\)\. seconds: wall time;", report)
    assert all(r["reused_embeddings"] == [] for r in rows if r["dir"] in ("zeroshot-last", "minilm"))
    assert "(cached)" not in report
    assert rows[0]["nDCG@10 vs bm25"] == "(baseline)"
    assert all(re.search(r"\(p [=<] ", r["nDCG@10 vs bm25"]) for r in rows[1:])
    round2 = [json.loads(line) for line in (tmp_path / "run" / "train_groups.round2.jsonl").read_text().splitlines()]
    assert len(round2) == 6 and all(g["negative_passages"] for g in round2)
    for model in ("model", "encoder"):  # each training run draws its loss curve
        assert (tmp_path / "run" / model / "loss_curve.png").is_file()
    assert json.loads((tmp_path / "run" / "encoder" / "embedding_spec.json").read_text())["pooling"] == "mean"
    # the demo recipe's template and no-EOS choice reach the trained model
    fmt = json.loads((tmp_path / "run" / "model" / "embedding_spec.json").read_text())
    assert fmt["query_template"] == 'This sentence : "{text}" means in one word:"' and fmt["append_eos"] is False
    # the dev set is watched during training: before, at EVAL_STEPS (half the steps: 1) and after the last step
    log = json.loads((tmp_path / "run" / "model" / "train_log.json").read_text())
    assert [e["step"] for e in log if "eval_nDCG@10" in e] == [0, 1, 2]


@pytest.mark.parametrize("missing", ["DATA", "HOLDOUT", "DEV_SET"])
def test_run_all_without_data_says_what_to_download(tiny_beir, tmp_path, missing):
    env = {**os.environ, "PYTHON": sys.executable, "DATA": str(tiny_beir), "HOLDOUT": "", "DEV_SET": "",
           missing: str(tmp_path / "nowhere")}
    done = subprocess.run(["bash", str(REPO / "retriever" / "scripts" / "run_all.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "scifact.zip" in done.stderr and "nowhere" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()  # nothing started

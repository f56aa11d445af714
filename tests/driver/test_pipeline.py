"""End to end: a tiny random decoder trains a few steps, then encode, search, evaluate."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retriever.driver import encode, search, train
from retriever.io import DataError

REPO = Path(__file__).resolve().parents[2]
TRAIN_FLAGS = ["--max_steps", "3", "--per_device_train_batch_size", "4", "--train_group_size", "3",
               "--learning_rate", "1e-3", "--query_max_len", "8", "--passage_max_len", "12"]


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tiny_groups, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                "--output_dir", str(out), *TRAIN_FLAGS])
    return out


def test_train_writes_model_log_and_loss_curve(trained):
    for name in ("config.json", "model.safetensors", "retriever_config.json", "tokenizer.json",
                 "text_format.json", "train_log.json", "loss_curve.png"):
        assert (trained / name).is_file(), name
    log = json.loads((trained / "train_log.json").read_text())
    assert [e["step"] for e in log] == [1, 2, 3] and all(np.isfinite(e["loss"]) for e in log)
    assert (trained / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((trained / "text_format.json").read_text())["passage_max_len"] == 12


def test_encode_search_evaluate_after_training(trained, tiny_beir, tmp_path):
    for shard in (0, 1):  # two shards: search must read both
        encode.main(["--model_name_or_path", str(trained), "--data_dir", str(tiny_beir), "--num_shards", "2",
                     "--shard_id", str(shard), "--output_file", str(tmp_path / f"corpus.shard{shard}.npz")])
    encode.main(["--model_name_or_path", str(trained), "--data_dir", str(tiny_beir), "--encode_is_query",
                 "--output_file", str(tmp_path / "queries.npz")])
    with np.load(tmp_path / "corpus.shard1.npz") as shard:
        assert shard["embeddings"].shape == (14, 32) and json.loads(str(shard["meta"]))["max_len"] == 12
    metrics = search.main(["--query_embeddings", str(tmp_path / "queries.npz"),
                           "--corpus_embeddings", str(tmp_path / "corpus.shard*.npz"),
                           "--qrels", str(tiny_beir), "--output_dir", str(tmp_path / "search")])
    for name in ("MRR@10", "nDCG@10", "Recall@100"):
        assert 0.0 <= metrics[name] <= 1.0
    assert metrics["Recall@100"] == 1.0  # depth 100 > 28 docs: every relevant doc is found
    run_lines = (tmp_path / "search" / "run.trec").read_text().splitlines()
    assert len(run_lines) == 14 * 28
    assert json.loads((tmp_path / "search" / "metrics.json").read_text())["MRR@10"] == metrics["MRR@10"]
    for index_type in ("ivf", "hnsw"):  # tiny corpus: approximate indexes find everything too
        approx = search.main(["--query_embeddings", str(tmp_path / "queries.npz"), "--index_type", index_type,
                              "--corpus_embeddings", str(tmp_path / "corpus.shard*.npz"),
                              "--qrels", str(tiny_beir), "--output_dir", str(tmp_path / index_type)])
        assert approx["Recall@100"] == 1.0 and approx["MRR@10"] == pytest.approx(metrics["MRR@10"])


def test_embeddings_from_different_models_are_refused(trained, tiny_model_dir, tiny_beir, tmp_path):
    encode.main(["--model_name_or_path", str(trained), "--data_dir", str(tiny_beir),
                 "--output_file", str(tmp_path / "corpus.npz")])
    encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), "--encode_is_query",
                 "--output_file", str(tmp_path / "queries.npz")])
    with pytest.raises(DataError, match="differ in 'model'"):
        search.main(["--query_embeddings", str(tmp_path / "queries.npz"),
                     "--corpus_embeddings", str(tmp_path / "corpus.npz"), "--output_dir", str(tmp_path / "s")])


def test_shell_scripts_run_in_order_and_print_mrr(tiny_model_dir, tiny_groups, tiny_beir, tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "MODEL": tiny_model_dir, "TRAIN_DATA": str(tiny_groups),
           "GROUP_SIZE": "3", "BATCH_SIZE": "4", "MAX_STEPS": "2", "QUERY_MAX_LEN": "8",
           "PASSAGE_MAX_LEN": "12", "MODEL_DIR": str(tmp_path / "model"), "DATA_DIR": str(tiny_beir),
           "EMB_DIR": str(tmp_path / "emb")}
    scripts = REPO / "retriever" / "scripts"

    def run(script, **extra):
        done = subprocess.run(["bash", str(scripts / script)], env={**env, **extra}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    assert "[train]" in run("train_msmarco.sh", OUTPUT_DIR=str(tmp_path / "model"))
    run("encode_fiqa.sh", QUERY_MAX_LEN="", PASSAGE_MAX_LEN="")
    out = run("search_fiqa.sh", OUTPUT_DIR=str(tmp_path / "search"))
    assert "MRR@10" in out and (tmp_path / "search" / "run.trec").is_file()


@pytest.mark.parametrize("extra", [["--activation_checkpointing", "True"],
                                   ["--lora", "True", "--lora_r", "4", "--lora_target_modules", "q_proj,v_proj",
                                    "--activation_checkpointing", "True"]],
                         ids=["full", "lora"])
def test_training_with_activation_checkpointing(tiny_model_dir, tiny_groups, tmp_path, extra):
    out = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                      "--output_dir", str(tmp_path), *TRAIN_FLAGS[2:], "--max_steps", "2", *extra])
    log = json.loads((out / "train_log.json").read_text())
    assert len(log) == 2 and all(np.isfinite(e["loss"]) and e["grad_norm"] > 0 for e in log)

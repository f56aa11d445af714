"""driver.train: a model, its logs, its dev metrics; bad flags are one-line errors."""
import json

import numpy as np
import pytest

from retriever.driver import encode, search, train
from tests.conftest import TRAIN_FLAGS


def test_bad_input_on_the_command_line_is_one_line_error_exit_2(tiny_model_dir, tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "groups.jsonl"
    bad.write_text('{"query": "a", "positive_passages": [{"text": "b"}]}\n{oops\n')
    done = subprocess.run([sys.executable, "-m", "retriever.driver.train", "--model_name_or_path", tiny_model_dir,
                           "--train_data", str(bad), "--output_dir", str(tmp_path / "out"), "--train_group_size", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {bad}:2: bad JSON")
    assert "Traceback" not in done.stderr


def test_train_writes_model_log_and_loss_curve(trained):
    for name in ("config.json", "model.safetensors", "embedding_spec.json", "tokenizer.json", "modules.json",
                 "README.md", "train_log.json", "loss_curve.png"):
        assert (trained / name).is_file(), name
    log = json.loads((trained / "train_log.json").read_text())
    assert [e["step"] for e in log] == [1, 2, 3] and all(np.isfinite(e["loss"]) for e in log)
    assert (trained / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((trained / "embedding_spec.json").read_text())["passage_max_len"] == 12


def test_bf16_on_a_machine_without_a_gpu_trains_on_the_cpu_without_being_told_use_cpu(tiny_model_dir, tiny_groups,
                                                                                      tmp_path):
    # Hugging Face's Trainer refuses --bf16 without a GPU unless --use_cpu is given: the driver gives it
    out = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir",
                      str(tmp_path / "m"), *TRAIN_FLAGS, "--bf16", "True"])
    log = json.loads((out / "train_log.json").read_text())
    assert log and all(np.isfinite(e["loss"]) for e in log) and (out / "model.safetensors").is_file()


def test_dev_metrics_during_training_are_logged_drawn_in_the_card_and_true(tiny_model_dir, tiny_groups, tiny_beir,
                                                                           tmp_path):
    out = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                      "--output_dir", str(tmp_path / "m"), *TRAIN_FLAGS,
                      "--eval_data_dir", str(tiny_beir), "--eval_split", "test", "--eval_steps", "2"])
    log = json.loads((out / "train_log.json").read_text())
    evals = [(e["step"], e["eval_MRR@10"], e["eval_nDCG@10"]) for e in log if "eval_MRR@10" in e]
    assert [step for step, _, _ in evals] == [0, 2, 3]  # the base model, every 2 steps, the final model
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3]
    card = (out / "README.md").read_text()
    assert "## Evaluation during training" in card
    assert all(f"| {step} | {mrr:.4f} | {ndcg:.4f} |" in card for step, mrr, ndcg in evals)
    # the last dev numbers are the saved model's own: encode + search + evaluate give the same
    for extra, name in (([], "corpus"), (["--encode_is_query"], "queries")):
        encode.main(["--model_name_or_path", str(out), "--data_dir", str(tiny_beir), *extra,
                     "--output_file", str(tmp_path / f"{name}.npz")])
    metrics = search.main(["--query_embeddings", str(tmp_path / "queries.npz"), "--corpus_embeddings",
                           str(tmp_path / "corpus.npz"), "--qrels", str(tiny_beir), "--output_dir", str(tmp_path / "s")])
    assert (metrics["MRR@10"], metrics["nDCG@10"]) == pytest.approx(evals[-1][1:], abs=1e-6)


def test_eval_steps_without_a_dev_set_is_refused(tiny_model_dir, tiny_groups, tmp_path):
    with pytest.raises(ValueError, match="--eval_steps needs --eval_data_dir"):
        train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                    "--output_dir", str(tmp_path / "m"), *TRAIN_FLAGS, "--eval_steps", "2"])


def test_a_dev_set_without_the_split_is_named_by_its_flag_before_training(tiny_model_dir, tiny_groups, tiny_beir,
                                                                          tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--eval_data_dir .* --eval_split dev: .*qrels/dev.tsv"):
        train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                    "--output_dir", str(tmp_path / "m"), *TRAIN_FLAGS, "--eval_data_dir", str(tiny_beir)])
    assert not (tmp_path / "m" / "train_log.json").exists()  # refused before a step was taken


def test_a_model_trained_without_its_last_layer_is_saved_as_a_model_of_its_kept_layers(tiny_model_dir, tiny_groups,
                                                                                       tmp_path):
    from sentence_transformers import SentenceTransformer

    from retriever.modeling import EncoderModel

    out = tmp_path / "cut"
    train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir", str(out),
                *TRAIN_FLAGS, "--lora", "True", "--drop_last_layers", "1"])
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 1
    assert EncoderModel.load(str(out)).encoder.config.num_hidden_layers == 1
    assert len(SentenceTransformer(str(out), device="cpu")[0].auto_model.layers) == 1


def test_dropping_layers_of_a_lora_run_saved_unmerged_is_refused(tiny_model_dir, tiny_groups, tmp_path):
    with pytest.raises(ValueError, match="--drop_last_layers needs --merge_lora True"):
        train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir",
                    str(tmp_path / "out"), *TRAIN_FLAGS, "--lora", "True", "--merge_lora", "False",
                    "--drop_last_layers", "1"])
    assert not (tmp_path / "out").exists()

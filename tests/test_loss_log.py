"""The loss log: JSON and PNG of every run, moving average and quarter means, dev curves, W&B offline."""
import json
import time

from retriever.loss_log import LossLogCallback, dev_curves, quarter_means, smooth


def test_moving_average_is_the_mean_of_the_last_window_values():
    assert smooth([4.0, 2.0, 6.0, 0.0], window=2) == [4.0, 3.0, 4.0, 3.0]
    assert smooth([1.0, 2.0, 3.0], window=5) == [1.0, 1.5, 2.0]


def test_quarter_means_compare_the_start_and_the_end_of_training():
    assert quarter_means([4.0, 2.0, 3.0, 3.0, 1.0, 1.0, 0.0, 2.0]) == (3.0, 1.0)
    assert quarter_means([5.0, 1.0]) == (5.0, 1.0)


def test_callback_writes_json_log_and_a_png_curve(tmp_path):
    class State:
        global_step, epoch, is_world_process_zero = 0, 0.0, True

    callback, state = LossLogCallback(str(tmp_path)), State()
    for step, loss in enumerate([3.0, 2.5, 2.0, 1.0], start=1):
        state.global_step = step
        callback.on_log(None, state, None, logs={"loss": loss})
    assert [e["loss"] for e in json.loads((tmp_path / "train_log.json").read_text())] == [3.0, 2.5, 2.0, 1.0]
    assert (tmp_path / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dev_metrics_are_logged_beside_the_loss_and_drawn_as_curves(tmp_path):
    class State:
        global_step, epoch, is_world_process_zero = 0, 0.0, True

    callback, state = LossLogCallback(str(tmp_path)), State()
    callback.on_log(None, state, None, logs={"eval_MRR@10": 0.25, "eval_nDCG@10": 0.5})  # before training
    for step, loss in enumerate([3.0, 2.0], start=1):
        state.global_step = step
        callback.on_log(None, state, None, logs={"loss": loss})
    callback.on_log(None, state, None, logs={"eval_MRR@10": 0.75, "eval_nDCG@10": 0.8})
    log = json.loads((tmp_path / "train_log.json").read_text())
    assert [sorted(e) for e in log][0] == ["epoch", "eval_MRR@10", "eval_nDCG@10", "seconds", "step"]
    assert dev_curves(log) == {"MRR@10": [(0, 0.25), (2, 0.75)], "nDCG@10": [(0, 0.5), (2, 0.8)]}
    assert (tmp_path / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_reports_loss_and_dev_metrics_to_wandb_offline_and_still_writes_its_own_log(
        tiny_model_dir, tiny_groups, tiny_beir, tmp_path, monkeypatch):
    import pytest

    pytest.importorskip("wandb")
    import wandb
    from retriever.driver import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir",
                      str(tmp_path / "m"), "--max_steps", "2", "--per_device_train_batch_size", "4",
                      "--train_group_size", "2", "--query_max_len", "8", "--passage_max_len", "12",
                      "--eval_data_dir", str(tiny_beir), "--eval_split", "test", "--eval_steps", "1",
                      "--report_to", "wandb", "--run_name", "offline-test"])
    wandb.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))  # the offline run W&B can sync later
    # W&B's own service process writes the file and may still be flushing it when the run has
    # finished (one CI run read only its header): wait for it, a few seconds at most
    deadline = time.monotonic() + 30
    while True:
        data = b"".join(p.read_bytes() for p in runs[0].glob("*.wandb"))
        if b"eval/nDCG@10" in data or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert b"train/loss" in data and b"eval/MRR@10" in data and b"eval/nDCG@10" in data
    assert [e["step"] for e in json.loads((out / "train_log.json").read_text()) if "loss" in e] == [1, 2]

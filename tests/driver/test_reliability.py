"""Runs that are killed, diverge, or repeat."""
import json
import math

import pytest

from retriever.driver import encode, search, train
from retriever.io import atomic_write
from retriever.io import NonFiniteLossError
from retriever.loss_log import LossLogCallback

FLAGS = ["--per_device_train_batch_size", "4", "--train_group_size", "3", "--learning_rate", "1e-3",
         "--query_max_len", "8", "--passage_max_len", "12", "--seed", "7"]


def train_args(model_dir, groups, out, *extra):
    return ["--model_name_or_path", model_dir, "--train_data", str(groups), "--output_dir", str(out),
            *FLAGS, *extra]


def losses(out):
    return [(e["step"], e["loss"]) for e in json.loads((out / "train_log.json").read_text())]


def test_killed_training_resumes_to_the_same_losses(tiny_model_dir, tiny_groups, tmp_path, monkeypatch):
    ckpt = ["--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2"]
    train.main(train_args(tiny_model_dir, tiny_groups, tmp_path / "full", *ckpt))

    original = LossLogCallback.on_log

    def die_at_step_3(self, args, state, control, logs=None, **kw):
        if state.global_step == 3:
            raise KeyboardInterrupt  # killed after checkpoint-2 was written
        return original(self, args, state, control, logs, **kw)

    monkeypatch.setattr(LossLogCallback, "on_log", die_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        train.main(train_args(tiny_model_dir, tiny_groups, tmp_path / "killed", *ckpt))
    assert (tmp_path / "killed" / "checkpoint-2").is_dir()
    monkeypatch.setattr(LossLogCallback, "on_log", original)
    train.main(train_args(tiny_model_dir, tiny_groups, tmp_path / "killed", *ckpt))  # resumes by itself

    resumed, full = losses(tmp_path / "killed"), losses(tmp_path / "full")
    assert [s for s, _ in resumed] == [s for s, _ in full] == [1, 2, 3, 4]
    assert [v for _, v in resumed] == pytest.approx([v for _, v in full], rel=1e-4)


def test_same_seed_gives_same_loss_curve_and_run_file(tiny_model_dir, tiny_groups, tiny_beir, tmp_path):
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        train.main(train_args(tiny_model_dir, tiny_groups, out, "--max_steps", "3"))
        for extra in ([], ["--encode_is_query"]):
            encode.main(["--model_name_or_path", str(out), "--data_dir", str(tiny_beir), *extra,
                         "--output_file", str(out / ("queries.npz" if extra else "corpus.npz"))])
        search.main(["--query_embeddings", str(out / "queries.npz"), "--corpus_embeddings",
                     str(out / "corpus.npz"), "--output_dir", str(out / "search")])
        runs.append((losses(out), (out / "search" / "run.trec").read_text()))
    assert runs[0][0] == runs[1][0]
    assert runs[0][1] == runs[1][1]


def test_nan_loss_stops_with_the_step_named(tmp_path):
    class State:
        global_step = 12
        epoch = 0.5
        is_world_process_zero = True

    callback = LossLogCallback(str(tmp_path))
    with pytest.raises(NonFiniteLossError, match="loss is nan at step 12"):
        callback.on_log(None, State(), None, logs={"loss": math.nan})


def test_failed_write_leaves_previous_file_and_no_partial_file(tmp_path):
    target = tmp_path / "run.trec"
    target.write_text("complete old run\n")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half a new ru")
            raise RuntimeError("killed")
    assert target.read_text() == "complete old run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run.trec"]


def test_bad_input_on_the_command_line_is_one_line_error_exit_2(tiny_model_dir, tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "groups.jsonl"
    bad.write_text('{"query": "a", "positive_passages": [{"text": "b"}]}\n{oops\n')
    done = subprocess.run([sys.executable, "-m", "retriever.driver.train", "--model_name_or_path", tiny_model_dir,
                           "--train_data", str(bad), "--output_dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {bad}:2: bad JSON")
    assert "Traceback" not in done.stderr


def test_qrels_naming_absent_queries_and_docs_are_counted_in_warnings(caplog):
    import logging

    from retriever.driver.search import check_qrels_ids

    qrels = {"q1": {"d1": 1, "gone": 1}, "q2": {"d2": 1}}
    with caplog.at_level(logging.WARNING):
        check_qrels_ids(qrels, run={"q1": {"d1": 1.0}}, doc_ids=["d1", "d2"])
    assert "1 qrels queries have no results" in caplog.text
    assert "1 relevant qrels documents are not in the corpus (e.g. gone)" in caplog.text


def test_embeddings_of_different_dimension_are_refused():
    from retriever.driver.search import check_compatible
    from retriever.io import DataError

    with pytest.raises(DataError, match="differ in 'dim' \\(576 vs 32\\)"):
        check_compatible({"dim": 576, "model": "m"}, {"dim": 32, "model": "m"}, "queries.npz", "corpus.npz")

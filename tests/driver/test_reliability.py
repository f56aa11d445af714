"""Runs that are killed, diverge, or repeat."""
import json
import math

import numpy as np

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


@pytest.mark.parametrize("lora", [False, True])
def test_killed_training_resumes_to_the_same_losses(tiny_model_dir, tiny_groups, tmp_path, monkeypatch, lora):
    ckpt = ["--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2"]
    if lora:
        ckpt += ["--lora", "True", "--lora_r", "4", "--lora_target_modules", "q_proj,v_proj"]
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


@pytest.mark.parametrize("lora", [False, True])
def test_a_checkpoint_is_a_model_that_encode_and_sentence_transformers_load(tiny_model_dir, tiny_groups,
                                                                          tiny_beir, tmp_path, lora):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "run"
    lora_args = ["--lora", "True", "--lora_r", "4", "--lora_target_modules", "q_proj,v_proj"] if lora else []
    train.main(train_args(tiny_model_dir, tiny_groups, out, "--max_steps", "4", "--save_strategy", "steps",
                          "--save_steps", "2", *lora_args))
    checkpoint = out / "checkpoint-2"
    weights = "adapter_model.safetensors" if lora else "model.safetensors"  # training goes on: not merged
    for name in ("embedding_spec.json", "modules.json", "tokenizer.json", weights, "trainer_state.json"):
        assert (checkpoint / name).is_file(), name
    path = encode.main(["--model_name_or_path", str(checkpoint), "--data_dir", str(tiny_beir), "--encode_is_query",
                        "--output_file", str(tmp_path / "queries.npz")])
    with np.load(path) as saved:
        ours, ids = saved["embeddings"], list(saved["ids"])
    from retriever.data import load_queries

    queries = load_queries(str(tiny_beir))
    theirs = SentenceTransformer(str(checkpoint), device="cpu").encode_query([queries[q] for q in ids])
    assert np.sum(ours * theirs, axis=1).min() >= 0.999
    final = encode.main(["--model_name_or_path", str(out), "--data_dir", str(tiny_beir), "--encode_is_query",
                         "--output_file", str(tmp_path / "final.npz")])
    with np.load(final) as saved:
        assert not np.allclose(saved["embeddings"], ours)  # step 2, not the final weights


def test_a_checkpoint_killed_while_saving_does_not_block_the_rerun(tiny_model_dir, tiny_groups, tmp_path):
    ckpt = ["--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2"]
    train.main(train_args(tiny_model_dir, tiny_groups, tmp_path / "full", *ckpt))
    out = tmp_path / "killed"
    train.main(train_args(tiny_model_dir, tiny_groups, out, *ckpt))
    (out / "checkpoint-4" / "trainer_state.json").unlink()  # killed while writing checkpoint-4
    for name in ("config.json", "model.safetensors"):
        (out / name).unlink()  # ...so no final model either
    train.main(train_args(tiny_model_dir, tiny_groups, out, *ckpt))  # resumes from checkpoint-2
    assert (out / "checkpoint-4" / "trainer_state.json").is_file()
    resumed, full = losses(out), losses(tmp_path / "full")
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


def test_diverging_training_stops_with_the_step_named_and_saves_no_model(tiny_model_dir, tiny_groups, tmp_path):
    """End to end through driver.train: the Trainer would log NaN as 0.0 and save NaN weights."""
    out = tmp_path / "diverged"
    with pytest.raises(NonFiniteLossError, match=r"(loss|grad_norm) is (nan|inf) at step \d+"):
        train.main(train_args(tiny_model_dir, tiny_groups, out, "--learning_rate", "1e9", "--max_steps", "6",
                              "--save_strategy", "steps", "--save_steps", "1"))
    assert not (out / "model.safetensors").exists()
    for checkpoint in out.glob("checkpoint-*"):  # the checkpoints kept are good ones
        from safetensors.numpy import load_file
        assert all(np.isfinite(w).all() for w in load_file(str(checkpoint / "model.safetensors")).values())
    assert all(math.isfinite(loss) for _, loss in losses(out))


def test_encode_refuses_a_model_with_nan_weights(tiny_model_dir, tiny_beir, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = load_file(str(broken / "model.safetensors"))
    weights = {k: torch.full_like(v, float("nan")) if "norm" in k else v for k, v in weights.items()}
    save_file(weights, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="NaN/inf embeddings for 28 of 28 texts"):
        encode.main(["--model_name_or_path", str(broken), "--data_dir", str(tiny_beir),
                     "--output_file", str(tmp_path / "corpus.npz")])
    assert not (tmp_path / "corpus.npz").exists()


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
                           "--train_data", str(bad), "--output_dir", str(tmp_path / "out"), "--train_group_size", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {bad}:2: bad JSON")
    assert "Traceback" not in done.stderr


def test_qrels_naming_absent_queries_and_docs_are_counted_in_warnings(caplog):
    import logging

    from retriever.metrics import check_qrels_ids

    qrels = {"q1": {"d1": 1, "gone": 1}, "q2": {"d2": 1}}
    with caplog.at_level(logging.WARNING):
        check_qrels_ids(qrels, run={"q1": {"d1": 1.0}}, doc_ids=["d1", "d2"])
    assert "1 qrels queries have no results" in caplog.text
    assert "1 relevant qrels documents are not in the corpus (e.g. gone)" in caplog.text


def test_embeddings_of_different_dimension_are_refused():
    from retriever.searcher import check_compatible
    from retriever.io import DataError

    with pytest.raises(DataError, match="differ in 'dim' \\(576 vs 32\\)"):
        check_compatible({"dim": 576, "model": "m"}, {"dim": 32, "model": "m"}, "queries.npz", "corpus.npz")


def test_a_save_that_fails_leaves_no_partial_model_under_the_final_name(tiny_model_dir, tiny_groups, tmp_path,
                                                                        monkeypatch):
    from transformers import PreTrainedTokenizerBase

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", disk_full)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        train.main(train_args(tiny_model_dir, tiny_groups, out, "--max_steps", "1"))
    left = sorted(p.name for p in out.iterdir())
    assert left == ["loss_curve.png", "run_recipe.json", "train_log.json"]  # logs, no config.json, weights, temp dir


def test_training_tells_the_dataset_each_epoch(tiny_model_dir, tiny_groups, tmp_path, monkeypatch):
    from retriever.data import TrainDataset

    seen = []
    original = TrainDataset.set_epoch
    monkeypatch.setattr(TrainDataset, "set_epoch", lambda self, epoch: (seen.append(epoch), original(self, epoch)))
    train.main(train_args(tiny_model_dir, tiny_groups, tmp_path / "m", "--num_train_epochs", "3",
                          "--per_device_train_batch_size", "8"))
    assert [e for i, e in enumerate(seen) if i == 0 or seen[i - 1] != e] == [0, 1, 2]


# ---- unclear errors: one line that names the cause ---------------------------------------------
def test_invalid_utf8_names_file_and_line(tmp_path):
    from retriever.data import load_train_groups
    from retriever.io import DataError

    bad = tmp_path / "g.jsonl"
    bad.write_bytes(b'{"query": "a", "positive_passages": [{"text": "b"}]}\n{"query": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"g.jsonl:2: not valid UTF-8 \(byte 0xe9 at column 15\)"):
        load_train_groups(str(bad))


def test_group_without_negatives_is_reported_with_its_line_before_a_model_is_loaded(tiny_groups, tmp_path):
    from retriever.io import DataError

    rows = tiny_groups.read_text().splitlines()
    rows[2] = json.dumps({**json.loads(rows[2]), "negative_passages": []})
    (tmp_path / "g.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"g.jsonl:3: group has no negative passages"):
        train.main(["--model_name_or_path", str(tmp_path / "no-model-needed-yet"), "--train_data",
                    str(tmp_path / "g.jsonl"), "--output_dir", str(tmp_path / "out"), "--train_group_size", "3"])


def test_empty_corpus_is_named(tmp_path):
    from retriever.driver import bm25
    from retriever.io import DataError

    (tmp_path / "corpus.jsonl").write_text("\n")
    with pytest.raises(DataError, match="corpus.jsonl: holds no documents"):
        bm25.main(["--data_dir", str(tmp_path)])


@pytest.mark.parametrize("driver,flags", [("search", ["--depth", "0"]), ("search", ["--batch_size", "-1"]),
                                          ("encode", ["--batch_size", "0"]), ("bm25", ["--depth", "0"]),
                                          ("mine", ["--data_dir", "d", "--output_file", "o", "--n_negatives", "0"]),
                                          ("train", ["--train_group_size", "0"])])
def test_count_flags_below_one_name_the_flag(driver, flags):
    import importlib

    module = importlib.import_module(f"retriever.driver.{driver}")
    with pytest.raises(ValueError, match=f"{flags[-2]} must be >= 1; got {flags[-1]}"):
        module.main(flags)


@pytest.mark.parametrize("damage", ["empty", "truncated", "shape"])
def test_damaged_embeddings_file_is_named_with_what_to_do(tiny_model_dir, tiny_beir, tmp_path, damage):
    import numpy as np

    from retriever.searcher import load_embeddings
    from retriever.io import DataError

    path = tmp_path / "corpus.npz"
    encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), "--output_file", str(path),
                 "--max_docs", "4"])
    data = path.read_bytes()
    if damage == "shape":
        with np.load(path) as d:
            np.savez(path, embeddings=d["embeddings"][:3], ids=d["ids"], meta=d["meta"])
    else:
        path.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    with pytest.raises(DataError, match=r"corpus.npz: .*[Rr]e-encode it"):
        load_embeddings(path)


def test_a_file_name_with_glob_characters_is_read_as_the_file(tiny_model_dir, tiny_beir, tmp_path):
    from retriever.searcher import load_corpus_shards

    path = tmp_path / "corpus[v1].npz"
    encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), "--output_file", str(path)])
    assert load_corpus_shards(str(path))[0].shape == (28, 32)


def test_missing_beir_file_hint_names_a_real_set_or_none(tmp_path):
    from retriever.data import load_corpus

    with pytest.raises(FileNotFoundError) as e:
        load_corpus(str(tmp_path / "my-data"))
    assert "beir.zip" not in str(e.value) and "my-data.zip" not in str(e.value) and "Point DATA_DIR" in str(e.value)
    with pytest.raises(FileNotFoundError, match=r"scifact\.zip"):
        load_corpus(str(tmp_path / "scifact"))


def test_a_checkpoint_with_nan_weights_is_never_written(tiny_model_dir, tiny_groups, tmp_path):
    """Logging every 5 steps, a NaN update can reach a save step before a NaN loss is logged."""
    import torch

    from retriever.trainer import RetrieverTrainer

    original = RetrieverTrainer.training_step

    def poison_at_step_2(self, model, inputs, num_items_in_batch=None):
        loss = original(self, model, inputs, num_items_in_batch)
        if self.state.global_step == 1:  # the update of step 2 breaks the weights
            with torch.no_grad():
                next(p for p in model.parameters() if p.requires_grad).fill_(float("nan"))
        return loss

    out = tmp_path / "m"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RetrieverTrainer, "training_step", poison_at_step_2)
        with pytest.raises(NonFiniteLossError, match="weights hold NaN/inf at step 2"):
            train.main(train_args(tiny_model_dir, tiny_groups, out, "--max_steps", "4", "--logging_steps", "5",
                                  "--save_strategy", "steps", "--save_steps", "1"))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]


# ---- reliability round 3 ----------------------------------------------------------------------
def test_rerunning_training_into_a_finished_model_is_refused_unless_overwritten(tiny_model_dir, tiny_groups, tmp_path):
    # case 4: a rerun with another learning rate must not re-save the old weights under a new model card
    out = tmp_path / "m"
    train.main(train_args(tiny_model_dir, tiny_groups, out, "--max_steps", "2"))
    weights = (out / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match=r"--output_dir .*: holds a finished model of a run with another recipe "
                                         r"\(--learning_rate 0.001 -> 0.005\); .*--overwrite_output_dir True"):
        train.main(train_args(tiny_model_dir, tiny_groups, out, "--max_steps", "2", "--learning_rate", "5e-3"))
    assert (out / "model.safetensors").read_bytes() == weights
    train.main(train_args(tiny_model_dir, tiny_groups, out, "--max_steps", "2"))  # the same recipe: nothing to do
    assert (out / "model.safetensors").read_bytes() == weights and [s for s, _ in losses(out)] == [1, 2]
    (out / "run_recipe.json").unlink()  # a model whose recipe is not known
    with pytest.raises(FileExistsError, match="--output_dir .*: holds a finished model; .*--overwrite_output_dir True"):
        train.main(train_args(tiny_model_dir, tiny_groups, out, "--max_steps", "2"))
    train.main(train_args(tiny_model_dir, tiny_groups, out, "--max_steps", "2", "--learning_rate", "5e-3",
                          "--overwrite_output_dir", "True"))
    assert (out / "model.safetensors").read_bytes() != weights
    assert "| `--learning_rate` | `0.005` |" in (out / "README.md").read_text()
    assert [s for s, _ in losses(out)] == [1, 2]  # a new run, not the old log continued


def test_resuming_checkpoints_with_another_recipe_is_refused_naming_the_flags(tiny_model_dir, tiny_groups, tmp_path,
                                                                             monkeypatch):
    ckpt = ["--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2"]
    original = LossLogCallback.on_log

    def die_at_step_3(self, args, state, control, logs=None, **kw):
        if state.global_step == 3:
            raise KeyboardInterrupt
        return original(self, args, state, control, logs, **kw)
    monkeypatch.setattr(LossLogCallback, "on_log", die_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        train.main(train_args(tiny_model_dir, tiny_groups, tmp_path / "k", *ckpt))
    monkeypatch.setattr(LossLogCallback, "on_log", original)
    with pytest.raises(ValueError, match=r"holds checkpoints of a run with another recipe \(--learning_rate "
                                         r"0.001 -> 0.005\)"):
        train.main(train_args(tiny_model_dir, tiny_groups, tmp_path / "k", *ckpt, "--learning_rate", "5e-3"))
    train.main(train_args(tiny_model_dir, tiny_groups, tmp_path / "k", *ckpt))  # the same recipe resumes
    assert [s for s, _ in losses(tmp_path / "k")] == [1, 2, 3, 4]


def test_a_temp_dir_left_by_a_killed_save_is_removed_by_the_next_save(tiny_model_dir, tiny_groups, tmp_path):
    # case 16
    out = tmp_path / "m"
    (out / ".saving-killed").mkdir(parents=True)
    (out / ".saving-killed" / "model.safetensors").write_bytes(b"half")
    train.main(train_args(tiny_model_dir, tiny_groups, out, "--max_steps", "1"))
    assert not list(out.glob(".saving-*")) and (out / "config.json").is_file()


def test_saved_files_get_the_mode_an_ordinary_write_gives(tiny_model_dir, tiny_groups, tiny_beir, tmp_path):
    # case 18: a model copied into a shared folder must be readable by others (umask, not mkstemp's 0600)
    import os
    import stat

    out = tmp_path / "m"
    train.main(train_args(tiny_model_dir, tiny_groups, out, "--max_steps", "1"))
    encode.main(["--model_name_or_path", str(out), "--data_dir", str(tiny_beir), "--output_file",
                 str(tmp_path / "emb" / "corpus.npz")])
    umask = os.umask(0)
    os.umask(umask)
    files = [p for p in [*out.rglob("*"), tmp_path / "emb" / "corpus.npz"] if p.is_file()]
    assert {"model.safetensors", "embedding_spec.json", "modules.json", "train_log.json", "loss_curve.png",
            "config_sentence_transformers.json"} <= {p.name for p in files}
    wrong = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files
             if stat.S_IMODE(p.stat().st_mode) != 0o666 & ~umask}
    assert not wrong

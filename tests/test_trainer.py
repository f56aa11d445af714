"""The Trainer: checkpoints that are models, resuming a killed run, stopping on NaN, epochs, activation checkpointing."""
import json
import math

import numpy as np
import pytest

from retriever.driver import encode, train
from retriever.trainer import RetrieverTrainer
from retriever.io import NonFiniteLossError
from retriever.loss_log import LossLogCallback
from tests.conftest import TRAIN_FLAGS, losses, train_args


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


def test_training_tells_the_dataset_each_epoch(tiny_model_dir, tiny_groups, tmp_path, monkeypatch):
    from retriever.data import TrainDataset

    seen = []
    original = TrainDataset.set_epoch
    monkeypatch.setattr(TrainDataset, "set_epoch", lambda self, epoch: (seen.append(epoch), original(self, epoch)))
    train.main(train_args(tiny_model_dir, tiny_groups, tmp_path / "m", "--num_train_epochs", "3",
                          "--per_device_train_batch_size", "8"))
    assert [e for i, e in enumerate(seen) if i == 0 or seen[i - 1] != e] == [0, 1, 2]


def test_a_checkpoint_with_nan_weights_is_never_written(tiny_model_dir, tiny_groups, tmp_path):
    """Logging every 5 steps, a NaN update can reach a save step before a NaN loss is logged."""
    import torch

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


@pytest.mark.parametrize("lora", [[], ["--lora", "True", "--lora_r", "4", "--lora_target_modules", "q_proj,v_proj"]],
                         ids=["full", "lora"])
def test_activation_checkpointing_recomputes_each_layer_in_the_backward_pass(tiny_model_dir, tiny_groups, tmp_path,
                                                                           monkeypatch, lora):
    from transformers.models.llama.modeling_llama import LlamaMLP

    calls = []  # every run of an MLP's forward (module hooks do not see the recomputation: count the method)
    original = LlamaMLP.forward
    monkeypatch.setattr(LlamaMLP, "forward", lambda self, *args, **kwargs: calls.append(1) or original(self, *args,
                                                                                                        **kwargs))
    counts = {}
    for on in ("False", "True"):
        out = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir",
                          str(tmp_path / on), *TRAIN_FLAGS[2:], "--max_steps", "2", "--activation_checkpointing", on,
                          *lora])
        log = json.loads((out / "train_log.json").read_text())
        assert len(log) == 2 and all(np.isfinite(e["loss"]) and e["grad_norm"] > 0 for e in log)
        counts[on], calls[:] = len(calls), []
    # 2 steps x (queries, passages) x 2 layers; checkpointed, each layer runs again in the backward pass
    assert counts == {"False": 8, "True": 16}

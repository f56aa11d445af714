"""Multi-task training: task prefixes, one-task batches, self-paced weights, distillation."""
import json

import numpy as np
import pytest
import torch

from retriever.collator import TrainCollator
from retriever.spec import EmbeddingSpec
from retriever.data import TrainDataset, load_train_groups
from retriever.driver import encode, train
from retriever.io import DataError
from retriever.multitask import SelfPacedWeights, TaskBatchSampler, read_task_instructions
from retriever.trainer import RetrieverTrainer, RetrieverTrainingArguments

INSTRUCTIONS = {"fruit": {"query_prefix": "what is ", "passage_prefix": "apple "},
                "animal": {"query_prefix": "how ", "passage_prefix": "dog "}}


def test_task_batches_hold_one_task_and_cover_every_item_once():
    tasks = ["a"] * 7 + ["b"] * 5 + ["c"] * 2
    sampler = TaskBatchSampler(tasks, batch_size=3, seed=1)
    batches = list(sampler)
    assert all(len({tasks[i] for i in b}) == 1 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(14)) and len(batches) == len(sampler) == 6
    assert list(TaskBatchSampler(tasks, 3, seed=1)) == batches  # seeded
    sampler.set_epoch(1)
    assert list(sampler) != batches  # reshuffled each epoch


def test_self_paced_weights_follow_recent_loss_and_average_one():
    w = SelfPacedWeights(momentum=0.5)
    assert w.update("a", 2.0) == 1.0  # one task seen: weight 1
    w.update("b", 1.0)
    assert w.weight("a") == pytest.approx(2 / 1.5) and w.weight("b") == pytest.approx(1 / 1.5)
    w.update("a", 0.0)  # ema_a = 0.5 * 2 + 0.5 * 0 = 1
    assert w.weight("a") == pytest.approx(1.0) and w.state()["loss_a"] == 1.0


def test_bad_task_instructions_name_the_file(tmp_path):
    bad = tmp_path / "tasks.json"
    bad.write_text('{"a": {"query_prefix": "x", "oops": "y"}}')
    with pytest.raises(DataError, match="tasks.json: task 'a'"):
        read_task_instructions(str(bad))


def test_collator_applies_each_task_prefix_and_carries_teacher_scores(tokenizer):
    collate = TrainCollator(tokenizer, EmbeddingSpec(query_max_len=8, passage_max_len=12, task_instructions=INSTRUCTIONS))
    passages = [{"text": "sun", "score": 2.0}, {"text": "tree", "score": -1.0}]
    batch = collate([{"query": "red", "passages": passages, "task": "animal"}] * 2)
    first = tokenizer.convert_ids_to_tokens(batch["query"]["input_ids"][0])
    assert first[:2] == ["how", "red"] and batch["task"] == "animal"
    assert tokenizer.convert_ids_to_tokens(batch["passage"]["input_ids"][0])[:2] == ["dog", "sun"]
    assert batch["teacher_scores"].tolist() == [[2.0, -1.0], [2.0, -1.0]]
    mixed = collate([{"query": "red", "passages": [{"text": "sun"}], "task": t} for t in ("fruit", "animal")])
    assert "task" not in mixed and "teacher_scores" not in mixed


def task_files(tiny_groups, tmp_path):
    groups = load_train_groups(str(tiny_groups))
    for g in groups:  # teacher scores: positive high
        for k, p in enumerate(g["positive_passages"] + g["negative_passages"]):
            p["score"] = 3.0 if k == 0 else -float(k)
    files = []
    for name, part in (("fruit", groups[:8]), ("animal", groups[8:])):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(g) + "\n" for g in part))
        files.append(f"{name}={path}")
    (tmp_path / "tasks.json").write_text(json.dumps(INSTRUCTIONS))
    return files


def test_trainer_batches_one_task_at_a_time(tiny_model_dir, tiny_groups, tokenizer, tmp_path):
    groups = [{**g, "task": t} for t, path in (f.split("=") for f in task_files(tiny_groups, tmp_path))
              for g in load_train_groups(path)]
    trainer = RetrieverTrainer(model=torch.nn.Linear(1, 1), train_dataset=TrainDataset(groups, 2),
                               data_collator=TrainCollator(tokenizer, EmbeddingSpec(query_max_len=8, passage_max_len=12, task_instructions=INSTRUCTIONS)),
                               args=RetrieverTrainingArguments(output_dir=str(tmp_path / "t"),
                                                               per_device_train_batch_size=3))
    batches = list(trainer.get_train_dataloader())
    assert len(batches) == 6 and all(b["task"] in INSTRUCTIONS for b in batches)


def test_multi_task_training_logs_task_weights_and_encode_uses_task_prefixes(tiny_model_dir, tiny_groups,
                                                                           tiny_beir, tmp_path):
    out = tmp_path / "model"
    train.main(["--model_name_or_path", tiny_model_dir, "--train_files", *task_files(tiny_groups, tmp_path),
                "--task_instructions", str(tmp_path / "tasks.json"), "--self_paced", "--loss", "distillation", "--distill_weight", "0.5",
                "--output_dir", str(out), "--max_steps", "4", "--per_device_train_batch_size", "4",
                "--train_group_size", "3", "--query_max_len", "8", "--passage_max_len", "12"])
    log = json.loads((out / "train_log.json").read_text())
    assert len(log) == 4 and {"loss_fruit", "weight_fruit", "loss_animal", "weight_animal"} <= set(log[-1])
    common = ["--model_name_or_path", str(out), "--data_dir", str(tiny_beir), "--encode_is_query"]
    by_task = encode.main([*common, "--task", "fruit", "--output_file", str(tmp_path / "a.npz")])
    explicit = encode.main([*common, "--query_prefix", "what is ", "--output_file", str(tmp_path / "b.npz")])
    plain = encode.main([*common, "--output_file", str(tmp_path / "c.npz")])
    with np.load(by_task) as a, np.load(explicit) as b, np.load(plain) as c:
        np.testing.assert_allclose(a["embeddings"], b["embeddings"], rtol=1e-5, atol=1e-6)
        assert not np.allclose(a["embeddings"], c["embeddings"])
    with pytest.raises(ValueError, match="unknown task 'tools'; the model was trained with: fruit, animal"):
        encode.main([*common, "--task", "tools", "--output_file", str(tmp_path / "d.npz")])

"""Multi-task training after LLM-Embedder: one embedder for several kinds of retrieval.

- task instructions: each task's queries and passages get their own prefix, so one
  model can tell "find a tool for this request" from "find evidence for this claim";
- homogeneous batches: every batch holds one task only, so in-batch negatives are
  of the same kind as the positive (a tool description is a trivially easy
  negative for a scientific claim);
- self-paced task weights: a task whose recent loss is high gets more weight.

    weight_t = ema_t / mean_s(ema_s),   ema_t <- m * ema_t + (1 - m) * loss_t

  over the tasks seen so far (m = momentum, 0.9 by default), so the weights
  average 1 and the overall learning rate is unchanged; a task that is already
  easy (low loss) stops dominating the updates.
"""
import json
import random
from pathlib import Path

from torch.utils.data import Sampler

from retriever.io import DataError


def read_task_instructions(path: str) -> dict[str, dict[str, str]]:
    """{task: {"query_prefix": ..., "passage_prefix": ...}} from a JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: bad JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected an object mapping task names to prefixes")
    for task, spec in data.items():
        if not isinstance(spec, dict) or set(spec) - {"query_prefix", "passage_prefix"}:
            raise DataError(f"{path}: task '{task}' must map to {{'query_prefix': ..., 'passage_prefix': ...}}")
    return data


def parse_train_file(spec: str) -> tuple[str, str]:
    """'name=path' -> (name, path); a bare path is named after its file stem."""
    if "=" in spec:
        name, path = spec.split("=", 1)
        return name, path
    return Path(spec).stem, spec


class TaskBatchSampler(Sampler):
    """Batches of indices that all share one task; shuffled per epoch, seeded.

    Within each task the indices are shuffled and cut into batches (the last,
    smaller batch of a task is kept); then the batches of all tasks are shuffled
    together, so tasks interleave over training.
    """

    def __init__(self, tasks: list[str], batch_size: int, seed: int = 42):
        self.tasks, self.batch_size, self.seed, self.epoch = tasks, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        by_task: dict[str, list[int]] = {}
        for i, task in enumerate(self.tasks):
            by_task.setdefault(task, []).append(i)
        out = []
        for task in sorted(by_task):
            idx = by_task[task]
            rng.shuffle(idx)
            out += [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        rng.shuffle(out)
        return out

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        counts: dict[str, int] = {}
        for task in self.tasks:
            counts[task] = counts.get(task, 0) + 1
        return sum(-(-n // self.batch_size) for n in counts.values())


class SelfPacedWeights:
    """Per-task loss weights that follow each task's recent loss (formula in the module doc)."""

    def __init__(self, momentum: float = 0.9):
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.ema: dict[str, float] = {}

    def update(self, task: str, loss: float) -> float:
        """Record this step's loss of `task`; return the weight for it."""
        prev = self.ema.get(task)
        self.ema[task] = loss if prev is None else self.momentum * prev + (1 - self.momentum) * loss
        return self.weight(task)

    def weight(self, task: str) -> float:
        mean = sum(self.ema.values()) / len(self.ema)
        return self.ema[task] / mean if mean > 0 else 1.0

    def state(self) -> dict[str, float]:
        """For the log: each task's recent loss and weight."""
        out = {}
        for task in sorted(self.ema):
            out[f"loss_{task}"] = round(self.ema[task], 4)
            out[f"weight_{task}"] = round(self.weight(task), 4)
        return out

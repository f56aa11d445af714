"""A Trainer callback that always writes the loss (and dev metrics) as JSON and as a PNG.

W&B (`--report_to wandb`) is optional; this log is written with or without it.
"""
import json
import time
from pathlib import Path

from transformers import TrainerCallback

from retriever.io import atomic_write, check_finite, write_json
from retriever.spec import LOSS_CURVE_FILE, TRAIN_LOG_FILE

EVAL_PREFIX = "eval_"


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average: point i is the mean of the last `window` values up to i."""
    out = []
    for i in range(len(values)):
        recent = values[max(0, i - window + 1): i + 1]
        out.append(sum(recent) / len(recent))
    return out


def quarter_means(losses: list[float]) -> tuple[float, float]:
    """Mean of the first and of the last quarter of the logged losses (at least one each)."""
    q = max(1, len(losses) // 4)
    return sum(losses[:q]) / q, sum(losses[-q:]) / q


def plot_loss(path, steps: list[int], losses: list[float], title: str = "training loss",
              dev: dict[str, list[tuple[int, float]]] = None) -> None:
    """Raw per-step losses (noisy at small batches) and their moving average; with `dev`
    ({metric: [(step, value)]}), the dev metrics in a second panel beside it. One PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    window = max(3, len(losses) // 5)
    first, last = quarter_means(losses)
    fig, axes = plt.subplots(1, 2 if dev else 1, figsize=(12 if dev else 7, 4), squeeze=False)
    ax = axes[0][0]
    ax.plot(steps, losses, marker="." if len(steps) < 50 else None, alpha=0.45, label="loss per step")
    ax.plot(steps, smooth(losses, window), linewidth=2.2, label=f"moving average ({window} steps)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{title}\nmean of first quarter {first:.3f}, of last quarter {last:.3f}", fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    if dev:
        right = axes[0][1]
        for name, points in dev.items():
            right.plot([s for s, _ in points], [v for _, v in points], marker="o", label=name)
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.set_xlim(ax.get_xlim())
        right.set_xlabel("step")
        right.set_ylabel("dev metric")
        last_step = max(step for points in dev.values() for step, _ in points)
        latest = ", ".join(f"{name} {points[-1][1]:.3f}" for name, points in dev.items())
        right.set_title(f"retrieval on the dev set (higher is better)\nat step {last_step}: {latest}", fontsize=10)
        right.legend()
        right.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


class LossLogCallback(TrainerCallback):
    """Writes <output_dir>/train_log.json (TRAIN_LOG_FILE) and loss_curve.png (LOSS_CURVE_FILE) at every log step.

    Also stops training on a NaN/inf loss or gradient norm, naming the step, before the
    Trainer saves a checkpoint of that step.
    """

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.history: list[dict] = []
        self.started = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        """On resume, keep the logged history up to the checkpoint's step."""
        self.started = time.monotonic()
        path = Path(self.output_dir) / TRAIN_LOG_FILE
        if state.global_step > 0 and path.is_file():
            self.history = [h for h in json.loads(path.read_text()) if h["step"] <= state.global_step]

    def on_log(self, args, state, control, logs=None, **kwargs):
        # a training step's loss, or the dev metrics of Trainer.evaluate ("eval_..."); not the run's summary
        if not logs or not ("loss" in logs or any(key.startswith(EVAL_PREFIX) for key in logs)):
            return
        for key in ("loss", "grad_norm"):  # the update of this step is applied: refuse to go on (or save)
            if key in logs:
                check_finite(key, logs[key], state.global_step)
        if state.is_world_process_zero:  # under torchrun only rank 0 writes
            seconds = round(time.monotonic() - self.started, 2)  # since this process began training
            self.history.append({"step": state.global_step, "epoch": state.epoch, "seconds": seconds, **logs})
            self.write()

    def write(self):
        write_json(Path(self.output_dir) / TRAIN_LOG_FILE, self.history)
        losses = [h for h in self.history if "loss" in h]
        if losses:
            plot_loss(Path(self.output_dir) / LOSS_CURVE_FILE, [h["step"] for h in losses], [h["loss"] for h in losses],
                      dev=dev_curves(self.history))


def dev_curves(history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(step, value)]} of the dev evaluations in a log history ({} when none)."""
    curves = {}
    for h in history:
        for key, value in h.items():
            if key.startswith(EVAL_PREFIX) and isinstance(value, (int, float)) and "@" in key:
                curves.setdefault(key[len(EVAL_PREFIX):], []).append((h["step"], value))
    return curves

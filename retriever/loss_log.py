"""A Trainer callback that always writes the loss as JSON and as a PNG curve.

W&B (`--report_to wandb`) is optional; this log is written with or without it.
"""
import json
import math
from pathlib import Path

from transformers import TrainerCallback

from retriever.io import NonFiniteLossError, atomic_write, write_json


def plot_loss(path, steps: list[int], losses: list[float], title: str = "training loss") -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, losses, marker="." if len(steps) < 50 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


class LossLogCallback(TrainerCallback):
    """Writes <output_dir>/train_log.json and loss_curve.png at every log step.

    Also stops training on a NaN/inf loss, naming the step, before a bad update is saved.
    """

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.history: list[dict] = []

    def on_train_begin(self, args, state, control, **kwargs):
        """On resume, keep the logged history up to the checkpoint's step."""
        path = Path(self.output_dir) / "train_log.json"
        if state.global_step > 0 and path.is_file():
            self.history = [h for h in json.loads(path.read_text()) if h["step"] <= state.global_step]

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"loss is {loss} at step {state.global_step}; stopping. Lower --learning_rate, "
                "raise --temperature, or check the data. The last saved checkpoint is kept."
            )
        if state.is_world_process_zero:  # under torchrun only rank 0 writes
            self.history.append({"step": state.global_step, "epoch": state.epoch, **logs})
            self.write()

    def write(self):
        write_json(f"{self.output_dir}/train_log.json", self.history)
        steps = [h["step"] for h in self.history]
        plot_loss(f"{self.output_dir}/loss_curve.png", steps, [h["loss"] for h in self.history])

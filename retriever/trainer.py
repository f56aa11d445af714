"""Trainer for the retriever: Hugging Face's Trainer plus GradCache.

Everything else (optimiser, schedule, bf16/fp16, checkpoints, resume, DDP under
torchrun, logging) is the stock Trainer's.
"""
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from transformers import Trainer, TrainingArguments

from retriever.grad_cache import grad_cache_step


@dataclass
class RetrieverTrainingArguments(TrainingArguments):
    output_dir: str = field(default="runs/train", metadata={"help": "Model, logs and loss curve go here."})
    # The collator needs the raw text fields, which Trainer would otherwise drop.
    remove_unused_columns: bool = field(default=False)
    logging_steps: float = field(default=1)
    save_strategy: str = field(default="no")
    report_to: str = field(default="none", metadata={"help": "'none', or 'wandb' (WANDB_MODE=offline works)."})
    grad_cache: bool = field(default=False, metadata={
        "help": "GradCache: the full contrastive batch in chunk-sized activation memory."})
    gc_q_chunk_size: int = field(default=4, metadata={"help": "GradCache: queries per chunk."})
    gc_p_chunk_size: int = field(default=8, metadata={"help": "GradCache: passages per chunk."})
    negatives_cross_device: bool = field(default=False, metadata={
        "help": "Under torchrun: score each query against the passages of every device."})

    def __post_init__(self):
        super().__post_init__()
        if self.gc_q_chunk_size < 1 or self.gc_p_chunk_size < 1:
            raise ValueError("--gc_q_chunk_size and --gc_p_chunk_size must be >= 1")


def unwrap(model):
    """The EncoderModel inside a DDP (or other) wrapper."""
    return getattr(model, "module", model)


class RetrieverTrainer(Trainer):
    """Trainer whose args are RetrieverTrainingArguments (--grad_cache and its chunk sizes)."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.args.grad_cache:
            loss = self.grad_cache_training_step(model, inputs)
        else:
            loss = super().training_step(model, inputs, num_items_in_batch)
        # Log the true loss: cross-device training multiplies it by the world size (see
        # EncoderModel.loss_from_reps), which is a gradient correction, not a worse loss.
        return loss / getattr(unwrap(model), "loss_scale", 1)

    def grad_cache_training_step(self, model, inputs) -> torch.Tensor:
        model.train()
        inputs = self._prepare_inputs(inputs)
        steps = self.current_gradient_accumulation_steps

        def backward(surrogate):
            self.accelerator.backward(surrogate / steps)

        # Embedding goes through `model` (the DDP wrapper when distributed), so DDP's
        # gradient hooks see every chunk; all but the last chunk skip the all-reduce.
        no_sync = getattr(model, "no_sync", nullcontext)
        with self.compute_loss_context_manager():
            loss = grad_cache_step(
                embed_query=lambda chunk: model(query=chunk).q_reps,
                embed_passage=lambda chunk: model(passage=chunk).p_reps,
                loss_fn=lambda q, p: unwrap(model).loss_from_reps(q, p)[0],
                query=inputs["query"], passage=inputs["passage"],
                q_chunk_size=self.args.gc_q_chunk_size, p_chunk_size=self.args.gc_p_chunk_size,
                backward=backward, no_sync=no_sync,
            )
        return loss / steps

"""Trainer for the retriever: Hugging Face's Trainer plus GradCache.

Everything else (optimiser, schedule, bf16/fp16, checkpoints, resume, DDP under
torchrun, logging) is the stock Trainer's.
"""
from contextlib import nullcontext

import torch
from transformers import Trainer

from retriever.grad_cache import grad_cache_step


def unwrap(model):
    """The EncoderModel inside a DDP (or other) wrapper."""
    return getattr(model, "module", model)


class RetrieverTrainer(Trainer):
    def __init__(self, *args, grad_cache: bool = False, gc_q_chunk_size: int = 4,
                 gc_p_chunk_size: int = 8, **kwargs):
        super().__init__(*args, **kwargs)
        self.grad_cache = grad_cache
        self.gc_q_chunk_size = gc_q_chunk_size
        self.gc_p_chunk_size = gc_p_chunk_size

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.grad_cache:
            loss = self.grad_cache_training_step(model, inputs)
        else:
            loss = super().training_step(model, inputs, num_items_in_batch)
        # Log the true loss: cross-device training multiplies it by the world size (see
        # EncoderModel.loss_from_reps), which is a gradient correction, not a worse loss.
        return loss / unwrap(model).loss_scale

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
                q_chunk_size=self.gc_q_chunk_size, p_chunk_size=self.gc_p_chunk_size,
                backward=backward, no_sync=no_sync,
            )
        return loss / steps

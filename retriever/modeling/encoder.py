"""EncoderModel: a Hugging Face base model turned into a dense retriever.

text -> base model -> pooled hidden state -> (L2 norm) -> embedding.
Queries and passages share one encoder. Training uses the in-batch contrastive
loss of `retriever.modeling.loss`.
"""
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from retriever.distributed import gather_with_grad, world_size
from retriever.modeling.loading import (enable_activation_checkpointing, load_base_model, load_trained_base,
                                       save_base, with_lora)
from retriever.modeling.loss import (contrastive_loss, distillation_loss, own_group_scores,
                                    positive_labels, similarity)

logger = logging.getLogger(__name__)

POOLING_MODES = ("last", "mean", "cls")
CONFIG_NAME = "retriever_config.json"


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str = "last") -> torch.Tensor:
    """Reduce (batch, seq, dim) hidden states to (batch, dim), reading positions from the mask.

    - last: the last real token (the appended EOS). Its position comes from the
      mask, not from token ids, so it is right for right padding, left padding and
      pad id == EOS id alike.
    - cls: the first real token.
    - mean: the average over real tokens.
    """
    if mode not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {POOLING_MODES}, got '{mode}'")
    mask = attention_mask.bool()  # (batch, seq)
    rows = torch.arange(hidden.size(0), device=hidden.device)
    if mode == "last":
        seq_len = mask.size(1)
        last = seq_len - 1 - mask.flip(dims=[1]).int().argmax(dim=1)  # (batch,)
        return hidden[rows, last]
    if mode == "cls":
        return hidden[rows, mask.int().argmax(dim=1)]
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


@dataclass
class EncoderOutput(ModelOutput):
    loss: Optional[torch.Tensor] = None
    scores: Optional[torch.Tensor] = None
    q_reps: Optional[torch.Tensor] = None
    p_reps: Optional[torch.Tensor] = None


class EncoderModel(nn.Module):
    def __init__(self, encoder: nn.Module, pooling: str = "last", normalize: bool = True,
                 temperature: float = 0.01, negatives_cross_device: bool = False,
                 distill_weight: float = 0.0, teacher_temperature: float = 1.0):
        super().__init__()
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got '{pooling}'")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.encoder = encoder
        self.pooling = pooling
        self.normalize = normalize
        self.temperature = temperature
        self.negatives_cross_device = negatives_cross_device
        self.distill_weight = distill_weight
        self.teacher_temperature = teacher_temperature

    # ---- building and saving -------------------------------------------------
    @classmethod
    def build(cls, model_args, negatives_cross_device: bool = False, distill_weight: float = 0.0,
              teacher_temperature: float = 1.0) -> "EncoderModel":
        """Turn parsed ModelArguments into a model (base model, optional LoRA)."""
        encoder = with_lora(load_base_model(model_args.model_name_or_path), model_args)
        return cls(encoder, model_args.pooling, model_args.normalize, model_args.temperature,
                   negatives_cross_device, distill_weight, teacher_temperature)

    @classmethod
    def load(cls, model_dir: str, pooling: str = "last", normalize: bool = True,
             temperature: float = 0.01) -> "EncoderModel":
        """Load a trained retriever, or any base model with the given settings.

        A trained retriever's retriever_config.json wins over the arguments: it was
        trained with those settings and only works with them.
        """
        config_file = Path(model_dir) / CONFIG_NAME
        config = json.loads(config_file.read_text()) if config_file.exists() else {}
        if config and (config["pooling"], config["normalize"]) != (pooling, normalize):
            logger.info("using the trained settings of %s: pooling=%s normalize=%s",
                        model_dir, config["pooling"], config["normalize"])
        return cls(
            load_trained_base(model_dir, config.get("base_model")),
            config.get("pooling", pooling),
            config.get("normalize", normalize),
            config.get("temperature", temperature),
        )

    def save(self, output_dir: str, base_model: Optional[str] = None, merge_lora: bool = False):
        """Write the encoder (or its LoRA adapter) and retriever_config.json to output_dir."""
        from retriever.io import write_json

        self.encoder, is_lora = save_base(self.encoder, output_dir, merge_lora)
        write_json(Path(output_dir) / CONFIG_NAME, {
            "pooling": self.pooling,
            "normalize": self.normalize,
            "temperature": self.temperature,
            "base_model": base_model,
            "lora": is_lora,
        })

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, **kwargs):
        """Called by Trainer for --activation_checkpointing; the base model does the work."""
        enable_activation_checkpointing(self.encoder, activation_checkpointing_kwargs, **kwargs)

    # ---- the maths -------------------------------------------------------------
    def encode(self, batch: dict) -> torch.Tensor:
        """Tokenised batch -> embeddings (batch, dim)."""
        return self.encode_poolings(batch, [self.pooling])[self.pooling]

    def encode_poolings(self, batch: dict, poolings) -> dict[str, torch.Tensor]:
        """One forward pass, pooled several ways: {pooling: (batch, dim)}.

        Comparing poolings of a base model then costs one pass, not one per pooling.
        """
        out = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        hidden = out.last_hidden_state.float()  # pool and normalise in fp32, also under bf16/fp16
        reps = {mode: pool(hidden, batch["attention_mask"], mode) for mode in poolings}
        return {mode: F.normalize(r, dim=-1) if self.normalize else r for mode, r in reps.items()}

    # Queries and passages share one encoder; two names keep call sites readable.
    encode_query = encode
    encode_passage = encode

    def compute_similarity(self, q_reps: torch.Tensor, p_reps: torch.Tensor) -> torch.Tensor:
        return similarity(q_reps, p_reps, self.temperature)  # (n_queries, n_passages)

    @staticmethod
    def compute_labels(n_queries: int, n_passages: int, device=None) -> torch.Tensor:
        return positive_labels(n_queries, n_passages, device)

    @staticmethod
    def compute_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(scores, labels)

    def loss_from_reps(self, q_reps: torch.Tensor, p_reps: torch.Tensor,
                       teacher_scores: Optional[torch.Tensor] = None):
        """The training loss from embeddings (the model's forward and GradCache both use it).

        With negatives_cross_device, queries and passages of all ranks are gathered
        first, and the contrastive loss is multiplied by the world size to undo DDP's
        gradient averaging (see retriever.distributed). With teacher_scores (n_queries,
        group_size) and distill_weight > 0, a KL term pulls the softmax over each
        query's own group towards the teacher's. Returns (loss, scores).
        """
        own_q, own_p = q_reps, p_reps
        if self.negatives_cross_device:
            q_reps, p_reps = gather_with_grad(q_reps), gather_with_grad(p_reps)
        loss, scores, _ = contrastive_loss(q_reps, p_reps, self.temperature)
        loss = loss * self.loss_scale
        if teacher_scores is not None and self.distill_weight > 0:
            student = own_group_scores(own_q, own_p, self.temperature)  # (n_queries, group_size)
            loss = loss + self.distill_weight * distillation_loss(student, teacher_scores, self.teacher_temperature)
        return loss, scores

    @property
    def loss_scale(self) -> int:
        """Factor the training loss carries on top of the true loss (1 unless cross-device)."""
        return world_size() if self.negatives_cross_device else 1

    def forward(self, query: Optional[dict] = None, passage: Optional[dict] = None,
                teacher_scores: Optional[torch.Tensor] = None) -> EncoderOutput:
        q_reps = self.encode_query(query) if query is not None else None
        p_reps = self.encode_passage(passage) if passage is not None else None
        if q_reps is None or p_reps is None:  # encoding only
            return EncoderOutput(q_reps=q_reps, p_reps=p_reps)
        loss, scores = self.loss_from_reps(q_reps, p_reps, teacher_scores)
        return EncoderOutput(loss=loss, scores=scores, q_reps=q_reps, p_reps=p_reps)

"""EncoderModel: a Hugging Face base model turned into a dense retriever.

text -> base model -> pooled hidden state -> (L2 norm) -> embedding.
Queries and passages share one encoder. Training uses the in-batch contrastive loss
built from the course's four graded methods below (`loss_from_reps`); the extra
terms (distillation) are in `retriever.modeling.loss`.
"""
import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from retriever.distributed import gather_with_grad, world_size
from retriever.modeling.loading import (enable_activation_checkpointing, load_base_model, load_trained_base,
                                       load_weights, save_base, with_lora)
from retriever.modeling.st_format import write_st_files
from retriever.spec import POOLING_MODES, EmbeddingSpec, read_spec
from retriever.modeling.loss import distillation_loss, own_group_scores


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
        # >>> graded: pool-last
        seq_len = mask.size(1)
        last = seq_len - 1 - mask.flip(dims=[1]).int().argmax(dim=1)  # (batch,) last 1 of each mask row
        return hidden[rows, last]
        # <<< graded: pool-last
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
    """The retriever. The course's four graded methods are `pooling`, `compute_similarity`,
    `compute_labels` and `compute_loss`: none reads `self` (graders call them on the class
    with None as self), and `forward` goes through each of them.

    `pooling_mode` picks the representation: "last" (the graded `pooling`) or, as
    alternatives, "mean" / "cls"; `normalize=False` keeps the raw hidden state.
    """

    def __init__(self, encoder: nn.Module, pooling_mode: str = "last", normalize: bool = True,
                 temperature: float = 0.01, negatives_cross_device: bool = False,
                 distill_weight: float = 0.0, teacher_temperature: float = 1.0):
        super().__init__()
        if pooling_mode not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got '{pooling_mode}'")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.encoder = encoder
        self.pooling_mode = pooling_mode
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
    def load(cls, model_dir: str, spec: Optional[EmbeddingSpec] = None, **base_model_defaults) -> "EncoderModel":
        """A saved retriever as it was trained (its spec), or any base model with the spec's
        defaults and the given overrides (pooling="mean", normalize=False, ...)."""
        spec = spec or read_spec(model_dir, **base_model_defaults)
        return cls(load_trained_base(model_dir, spec.base_model), spec.pooling, spec.normalize, spec.temperature)

    def save(self, output_dir: str, spec: EmbeddingSpec, tokenizer=None, merge_lora: bool = False) -> EmbeddingSpec:
        """The model's one artifact: weights (or a LoRA adapter), tokenizer, embedding_spec.json,
        and the sentence-transformers files, so that `SentenceTransformer(output_dir)` loads it.

        The spec's pooling, normalize, temperature and lora are the model's own. Returns the spec written.
        """
        self.encoder, is_lora = save_base(self.encoder, output_dir, merge_lora)
        spec = dataclasses.replace(spec, pooling=self.pooling_mode, normalize=self.normalize,
                                   temperature=self.temperature, lora=is_lora)
        spec.save(output_dir)
        if tokenizer is not None:
            tokenizer.save_pretrained(output_dir)
            write_st_files(output_dir, spec, tokenizer, self.encoder.config.hidden_size)
        return spec

    def load_weights(self, model_dir: str) -> None:
        """Read the weights of a saved model (a checkpoint of this run) into this one."""
        load_weights(self.encoder, model_dir)

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, **kwargs):
        """Called by Trainer for --activation_checkpointing; the base model does the work."""
        enable_activation_checkpointing(self.encoder, activation_checkpointing_kwargs, **kwargs)

    # ---- the course's graded contract: pure maths, no `self` -------------------------
    # The student's handout (python -m retriever.driver.handout) leaves these four bodies to
    # implement; the graders' tests are tests/modeling/test_graded.py.
    def pooling(self, last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, seq, hidden) -> (batch, hidden): each sequence's last real token, L2-normalised.

        The position comes from the attention mask (right padding by default; left
        padding and pad id == EOS id work too).
        """
        # >>> graded: pooling
        return F.normalize(pool(last_hidden_state, attention_mask, "last"), dim=-1)  # (batch, hidden)
        # <<< graded: pooling

    def compute_similarity(self, q_reps: torch.Tensor, p_reps: torch.Tensor, temperature: float) -> torch.Tensor:
        """(n_queries, n_passages): q_reps @ p_reps.T / temperature."""
        # >>> graded: compute_similarity
        return q_reps @ p_reps.T / temperature  # (n_queries, n_passages)
        # <<< graded: compute_similarity

    def compute_labels(self, n_queries: int, n_passages: int) -> torch.Tensor:
        """torch.long [0, P, 2P, ...], P = n_passages // n_queries: each query's positive column.

        Passages come grouped by query, positive first, so the positive of query i is
        column i * P; every other column is a negative for it.
        """
        # >>> graded: compute_labels
        if n_queries <= 0 or n_passages % n_queries:
            raise ValueError(f"n_passages ({n_passages}) must be a positive multiple of n_queries ({n_queries})")
        group_size = n_passages // n_queries
        return torch.arange(n_queries, dtype=torch.long) * group_size  # (n_queries,)
        # <<< graded: compute_labels

    def compute_loss(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the scores against the target columns (0-dim)."""
        # >>> graded: compute_loss
        return F.cross_entropy(scores.float(), target.to(scores.device))
        # <<< graded: compute_loss

    # ---- encoding --------------------------------------------------------------------
    def represent(self, hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
        """Hidden states -> embeddings with pooling `mode`; "last" + normalize is the graded `pooling`."""
        if mode == "last" and self.normalize:
            return self.pooling(hidden, attention_mask)
        reps = pool(hidden, attention_mask, mode)  # (batch, dim)
        return F.normalize(reps, dim=-1) if self.normalize else reps

    def encode(self, batch: dict) -> torch.Tensor:
        """Tokenised batch -> embeddings (batch, dim)."""
        return self.encode_poolings(batch, [self.pooling_mode])[self.pooling_mode]

    def encode_poolings(self, batch: dict, poolings) -> dict[str, torch.Tensor]:
        """One forward pass, pooled several ways: {pooling: (batch, dim)}.

        Comparing poolings of a base model then costs one pass, not one per pooling.
        """
        out = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        hidden = out.last_hidden_state.float()  # pool and normalise in fp32, also under bf16/fp16
        return {mode: self.represent(hidden, batch["attention_mask"], mode) for mode in poolings}

    # Queries and passages share one encoder; two names keep call sites readable.
    encode_query = encode
    encode_passage = encode

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
        scores = self.compute_similarity(q_reps, p_reps, self.temperature)  # (n_queries, n_passages)
        labels = self.compute_labels(q_reps.size(0), p_reps.size(0)).to(scores.device)
        loss = self.compute_loss(scores, labels) * self.loss_scale
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

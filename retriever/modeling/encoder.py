"""EncoderModel: a Hugging Face base model turned into a dense retriever.

text -> base model -> pooled hidden state -> (L2 norm) -> embedding.
Queries and passages share one encoder. The model is built from its spec (how it reads
text and pools: retriever.spec) and a loss object (modeling/loss.py); the default loss,
the in-batch contrastive one, is made of the course's four graded methods below.
"""
import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from retriever.modeling.loading import (enable_activation_checkpointing, load_trained_base, load_weights,
                                       save_base, trainable_base)
from retriever.modeling.loss import ContrastiveLoss
from retriever.pooling import last_token, pool
from retriever.modeling.st_format import write_st_files
from retriever.spec import EmbeddingSpec, read_spec


@dataclass
class EncoderOutput(ModelOutput):
    loss: Optional[torch.Tensor] = None
    scores: Optional[torch.Tensor] = None
    q_reps: Optional[torch.Tensor] = None
    p_reps: Optional[torch.Tensor] = None


class EncoderModel(nn.Module):
    """The retriever: a base model read as its `spec` says (pooling, normalize, temperature), and
    the `loss` it trains with (default: the contrastive loss).

    Built as the course's starter code builds it, `EncoderModel(encoder, pooling, normalize,
    temperature)`, or from a whole spec, `EncoderModel(encoder, spec=spec)`: the keywords make
    the spec, which stays the one place these values live (`model.temperature` and
    `model.normalize` read and write it).

    The course's four graded methods are `pooling`, `compute_similarity`, `compute_labels`
    and `compute_loss`: none reads `self` (graders call them on the class with None as
    self), and training with the default loss goes through each of them.
    """

    def __init__(self, encoder: nn.Module, pooling: Optional[str] = None, normalize: Optional[bool] = None,
                 temperature: Optional[float] = None, *, spec: Optional[EmbeddingSpec] = None, loss=None):
        super().__init__()
        given = {name: value for name, value in
                 (("pooling", pooling), ("normalize", normalize), ("temperature", temperature)) if value is not None}
        if spec is not None and given:
            raise ValueError(f"EncoderModel: give {', '.join(given)} or spec, not both (the spec holds them)")
        self.encoder = encoder
        self.spec = spec or EmbeddingSpec(**given)
        self.loss = loss or ContrastiveLoss()

    # The starter code's attributes, read from (and written to) the spec.
    @property
    def temperature(self) -> float:
        return self.spec.temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self.spec = dataclasses.replace(self.spec, temperature=value)

    @property
    def normalize(self) -> bool:
        return self.spec.normalize

    @normalize.setter
    def normalize(self, value: bool) -> None:
        self.spec = dataclasses.replace(self.spec, normalize=value)

    # ---- building and saving -------------------------------------------------
    @classmethod
    def build(cls, spec: EmbeddingSpec, model_args, loss=None) -> "EncoderModel":
        """A model to train: the spec's base model (with LoRA adapters when --lora), read as the spec says."""
        return cls(trainable_base(spec.base_model, model_args), spec=spec, loss=loss)

    @classmethod
    def load(cls, model_dir: str, spec: Optional[EmbeddingSpec] = None, **base_model_defaults) -> "EncoderModel":
        """A saved retriever as it was trained (its spec), or any base model with the spec's
        defaults and the given overrides (pooling="mean", normalize=False, ...)."""
        spec = spec or read_spec(model_dir, **base_model_defaults)
        model = cls(load_trained_base(model_dir, spec.base_model), spec=spec)
        model.name_or_path = model_dir  # where the weights came from: embedding files record it
        return model

    def save(self, output_dir: str, tokenizer=None, merge_lora: bool = False) -> EmbeddingSpec:
        """The model's one artifact: weights (or a LoRA adapter), tokenizer, its spec (embedding_spec.json),
        and the sentence-transformers files, so that `SentenceTransformer(output_dir)` loads it.
        Returns the spec written."""
        self.encoder, is_lora = save_base(self.encoder, output_dir, merge_lora)
        self.spec.lora = is_lora
        self.spec.save(output_dir)
        if tokenizer is not None:
            tokenizer.save_pretrained(output_dir)
            write_st_files(output_dir, self.spec, tokenizer, self.encoder.config.hidden_size)
        return self.spec

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
        return F.normalize(last_token(last_hidden_state, attention_mask), dim=-1)  # (batch, hidden)
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
    def represent(self, hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
        """Hidden states -> embeddings with `pooling`; "last" + normalize is the graded `pooling`."""
        if pooling == "last" and self.normalize:
            return self.pooling(hidden, attention_mask)
        reps = pool(hidden, attention_mask, pooling)  # (batch, dim)
        return F.normalize(reps, dim=-1) if self.normalize else reps

    def encode(self, batch: dict) -> torch.Tensor:
        """Tokenised batch -> embeddings (batch, dim)."""
        return self.encode_poolings(batch, [self.spec.pooling])[self.spec.pooling]

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

    @property
    def loss_scale(self) -> int:
        """Factor the training loss carries on top of the true loss (the world size with
        cross-device negatives, else 1)."""
        return getattr(self.loss, "scale", 1)

    def forward(self, query: Optional[dict] = None, passage: Optional[dict] = None,
                teacher_scores: Optional[torch.Tensor] = None) -> EncoderOutput:
        q_reps = self.encode_query(query) if query is not None else None
        p_reps = self.encode_passage(passage) if passage is not None else None
        if q_reps is None or p_reps is None:  # encoding only
            return EncoderOutput(q_reps=q_reps, p_reps=p_reps)
        loss, scores = self.loss(self, q_reps, p_reps, teacher_scores)
        return EncoderOutput(loss=loss, scores=scores, q_reps=q_reps, p_reps=p_reps)

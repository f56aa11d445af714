"""RerankerModel: a cross-encoder that reads a query and a passage together.

(query, passage) -> one token sequence -> base model -> last-token hidden state
-> linear layer -> one relevance score. Slower than the bi-encoder (one forward
pass per pair, no pre-computed index) but it sees both texts at once, so it
re-ranks the bi-encoder's top-k. Built from its own small spec (retriever.spec.RerankerSpec:
pooling, prefixes, lengths) and trained with the listwise loss of `retriever.modeling.loss`
over each query's group (positive first). Scoring runs and teacher scores: retriever.reranking.
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.utils import ModelOutput

from retriever.modeling.loading import (enable_activation_checkpointing, load_trained_base, load_weights,
                                       save_base, trainable_base)
from retriever.modeling.loss import ListwiseLoss
from retriever.pooling import pool
from retriever.spec import RerankerSpec, read_reranker_spec

logger = logging.getLogger(__name__)

HEAD_NAME = "score_head.safetensors"


@dataclass
class RerankerOutput(ModelOutput):
    loss: Optional[torch.Tensor] = None
    scores: Optional[torch.Tensor] = None


class RerankerModel(nn.Module):
    def __init__(self, encoder: nn.Module, spec: Optional[RerankerSpec] = None, loss=None):
        super().__init__()
        self.encoder = encoder
        self.spec = spec or RerankerSpec()
        self.loss = loss or ListwiseLoss()
        self.head = nn.Linear(encoder.config.hidden_size, 1)
        self.head.to(next(encoder.parameters()).dtype)

    @classmethod
    def build(cls, spec: RerankerSpec, model_args, loss=None) -> "RerankerModel":
        """The spec's base model (optional LoRA) + a freshly initialised score head."""
        return cls(trainable_base(spec.base_model, model_args), spec, loss)

    @classmethod
    def load(cls, model_dir: str, spec: Optional[RerankerSpec] = None) -> "RerankerModel":
        head_file = Path(model_dir) / HEAD_NAME
        if not head_file.is_file():
            raise FileNotFoundError(f"{model_dir}: not a trained re-ranker (no {HEAD_NAME}; train one with "
                                    "python -m retriever.driver.train_reranker)")
        spec = spec or read_reranker_spec(model_dir)
        model = cls(load_trained_base(model_dir, spec.base_model), spec)
        model.head.load_state_dict(load_file(str(head_file)))
        return model

    def save(self, output_dir: str, tokenizer=None, merge_lora: bool = False) -> RerankerSpec:
        """Weights (or a LoRA adapter), the score head, the tokenizer and the spec (reranker_spec.json)."""
        self.encoder, self.spec.lora = save_base(self.encoder, output_dir, merge_lora)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(Path(output_dir) / HEAD_NAME))
        self.spec.save(output_dir)
        if tokenizer is not None:
            tokenizer.save_pretrained(output_dir)
        return self.spec

    def load_weights(self, model_dir: str) -> None:
        """Read the weights of a saved re-ranker (a checkpoint of this run) into this one."""
        load_weights(self.encoder, model_dir)
        self.head.load_state_dict(load_file(str(Path(model_dir) / HEAD_NAME)))

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, **kwargs):
        """Called by Trainer for --activation_checkpointing; the base model does the work."""
        enable_activation_checkpointing(self.encoder, activation_checkpointing_kwargs, **kwargs)

    def score(self, pairs: dict) -> torch.Tensor:
        """Tokenised (query, passage) pairs -> scores (n_pairs,)."""
        out = self.encoder(input_ids=pairs["input_ids"], attention_mask=pairs["attention_mask"])
        hidden = pool(out.last_hidden_state, pairs["attention_mask"], self.spec.pooling)  # (n_pairs, dim)
        return self.head(hidden.to(self.head.weight.dtype)).squeeze(-1)

    def forward(self, pairs: dict, group_size: Optional[int] = None) -> RerankerOutput:
        scores = self.score(pairs)
        if group_size is None:  # scoring only
            return RerankerOutput(scores=scores)
        groups = scores.view(-1, group_size)  # (n_queries, group_size), positive first
        loss, groups = self.loss(self, groups)
        return RerankerOutput(loss=loss, scores=groups)

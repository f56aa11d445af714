"""RerankerModel: a cross-encoder that reads a query and a passage together.

(query, passage) -> one token sequence -> base model -> last-token hidden state
-> linear layer -> one relevance score. Slower than the bi-encoder (one forward
pass per pair, no pre-computed index) but it sees both texts at once, so it
re-ranks the bi-encoder's top-k. Trained with the listwise loss of
`retriever.modeling.loss` over each query's group (positive first).
"""
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.utils import ModelOutput

from retriever.io import write_json
from retriever.modeling.encoder import pool
from retriever.modeling.loading import (enable_activation_checkpointing, load_base_model, load_trained_base,
                                       save_base, with_lora)
from retriever.modeling.loss import listwise_loss

logger = logging.getLogger(__name__)

CONFIG_NAME = "reranker_config.json"
HEAD_NAME = "score_head.safetensors"


@dataclass
class RerankerOutput(ModelOutput):
    loss: Optional[torch.Tensor] = None
    scores: Optional[torch.Tensor] = None


class RerankerModel(nn.Module):
    def __init__(self, encoder: nn.Module, pooling: str = "last"):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.head = nn.Linear(encoder.config.hidden_size, 1)
        self.head.to(next(encoder.parameters()).dtype)

    @classmethod
    def build(cls, model_args) -> "RerankerModel":
        """Base model (optional LoRA) + a freshly initialised score head."""
        return cls(with_lora(load_base_model(model_args.model_name_or_path), model_args), model_args.pooling)

    @classmethod
    def load(cls, model_dir: str) -> "RerankerModel":
        config_file = Path(model_dir) / CONFIG_NAME
        if not config_file.is_file():
            raise FileNotFoundError(f"{config_file}: not a trained re-ranker (train one with "
                                    "python -m retriever.driver.train_reranker)")
        config = json.loads(config_file.read_text())
        model = cls(load_trained_base(model_dir, config.get("base_model")), config["pooling"])
        model.head.load_state_dict(load_file(str(Path(model_dir) / HEAD_NAME)))
        return model

    def save(self, output_dir: str, base_model: Optional[str] = None, merge_lora: bool = False):
        self.encoder, is_lora = save_base(self.encoder, output_dir, merge_lora)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(Path(output_dir) / HEAD_NAME))
        write_json(Path(output_dir) / CONFIG_NAME, {"pooling": self.pooling, "base_model": base_model,
                                                   "lora": is_lora})

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, **kwargs):
        """Called by Trainer for --activation_checkpointing; the base model does the work."""
        enable_activation_checkpointing(self.encoder, activation_checkpointing_kwargs, **kwargs)

    def score(self, pairs: dict) -> torch.Tensor:
        """Tokenised (query, passage) pairs -> scores (n_pairs,)."""
        out = self.encoder(input_ids=pairs["input_ids"], attention_mask=pairs["attention_mask"])
        hidden = pool(out.last_hidden_state, pairs["attention_mask"], self.pooling)  # (n_pairs, dim)
        return self.head(hidden.to(self.head.weight.dtype)).squeeze(-1)

    def forward(self, pairs: dict, group_size: Optional[int] = None) -> RerankerOutput:
        scores = self.score(pairs)
        if group_size is None:  # scoring only
            return RerankerOutput(scores=scores)
        groups = scores.view(-1, group_size)  # (n_queries, group_size), positive first
        return RerankerOutput(loss=listwise_loss(groups), scores=groups)

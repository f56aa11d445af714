"""Batches for training: (query, passages) examples -> padded token-id tensors.

Texts are shaped by `retriever.text` (the model's spec: template, truncation, EOS);
this module only groups, pads and stacks them.
"""
import logging
from dataclasses import dataclass, field

import torch

from retriever.spec import EmbeddingSpec, RerankerSpec
from retriever.text import content_free_last_token, format_text, join_title, tokenize_as, tokenize_pairs

logger = logging.getLogger(__name__)


def pad(tokenizer, ids: list[list[int]]) -> dict[str, torch.Tensor]:
    """Pad to the longest sequence on the tokenizer's padding side."""
    batch = tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


@dataclass
class TrainCollator:
    """(query, passages) examples -> {"query": batch, "passage": batch, ...}.

    Passages stay grouped by query, positive first: the layout the loss expects.
    Multi-task: an example's "task" picks its prefixes from the spec's
    task_instructions; a batch of one task carries "task"; when every passage has a
    teacher "score", the batch carries "teacher_scores" (n_queries, group_size).
    """
    tokenizer: object
    spec: EmbeddingSpec = field(default_factory=EmbeddingSpec)

    def __post_init__(self):
        warning = content_free_last_token(self.tokenizer, self.spec)
        if warning:  # said once, when training starts
            logger.warning(warning)

    def __call__(self, examples: list[dict]) -> dict:
        query_ids, passage_ids = [], []
        for ex in examples:  # per example: its task may bring its own prefixes
            task = ex.get("task") if ex.get("task") in self.spec.task_instructions else None
            query_ids += tokenize_as(self.spec, self.tokenizer, [ex["query"]], "query", task)
            passage_ids += tokenize_as(self.spec, self.tokenizer, [join_title(p["text"], p.get("title", ""))
                                                                  for p in ex["passages"]], "passage", task)
        batch = {"query": pad(self.tokenizer, query_ids), "passage": pad(self.tokenizer, passage_ids)}
        tasks = {ex.get("task", "") for ex in examples}
        if len(tasks) == 1 and "" not in tasks:
            batch["task"] = tasks.pop()
        if all("score" in p for ex in examples for p in ex["passages"]):
            batch["teacher_scores"] = torch.tensor([[float(p["score"]) for p in ex["passages"]] for ex in examples])
        return batch


@dataclass
class RerankCollator:
    """(query, passages) examples -> {"pairs": batch, "group_size": P} for the re-ranker.

    Pairs stay grouped by query, positive first: the layout the listwise loss expects;
    each pair is shaped as the re-ranker's spec says (prefixes, lengths).
    """
    tokenizer: object
    spec: RerankerSpec = field(default_factory=RerankerSpec)

    def pair_ids(self, queries: list[str], passages: list[dict]) -> list[list[int]]:
        """Token ids of each (query, passage) pair; passages are {"text", "title"?} dicts."""
        queries = [format_text(q, self.spec.query_prefix) for q in queries]
        passages = [format_text(p["text"], self.spec.passage_prefix, p.get("title", "")) for p in passages]
        return tokenize_pairs(self.tokenizer, queries, passages, self.spec.query_max_len, self.spec.max_len)

    def __call__(self, examples: list[dict]) -> dict:
        queries = [ex["query"] for ex in examples for _ in ex["passages"]]
        passages = [p for ex in examples for p in ex["passages"]]
        return {"pairs": pad(self.tokenizer, self.pair_ids(queries, passages)),
                "group_size": len(examples[0]["passages"])}

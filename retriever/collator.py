"""Text -> token ids: prefixes, truncation, the forced EOS, padding.

`format_text` and `tokenize` are the one place where a text is shaped for the
model; training, encoding and every driver go through them.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

# Written beside a trained model: the prefixes and lengths it was trained with,
# which encode reuses so queries and passages are shaped the same way.
TEXT_FORMAT_FILE = "text_format.json"


def read_text_format(model_dir: str) -> dict:
    """The trained model's prefixes and max lengths (empty for a base model)."""
    path = Path(model_dir) / TEXT_FORMAT_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def trained_prefix(fmt: dict, kind: str, task: Optional[str] = None) -> str:
    """The prefix a trained model expects for `kind` ("query"/"passage"), per task if multi-task."""
    if task is None:
        return fmt.get(f"{kind}_prefix", "")
    instructions = fmt.get("task_instructions") or {}
    if task not in instructions:
        raise ValueError(f"unknown task '{task}'; the model was trained with: {', '.join(instructions) or 'none'}")
    return instructions[task].get(f"{kind}_prefix", fmt.get(f"{kind}_prefix", ""))


def format_text(text: str, prefix: str = "", title: str = "") -> str:
    """The text a model sees before tokenisation: prefix, then title, then body."""
    body = f"{title} {text}".strip() if title else text
    return f"{prefix}{body}"


def tokenize(tokenizer, texts: list[str], max_len: int) -> list[list[int]]:
    """Token ids per text, at most `max_len` long, always ending with EOS.

    Truncation happens first, to max_len - 1, and EOS is appended after it, so it
    is never cut off. Tokenizers that already end every text with EOS (or [SEP]
    for BERT-style models) are not given a second one.
    """
    if max_len < 2:
        raise ValueError(f"max_len must be at least 2 (one token + EOS), got {max_len}")
    eos = tokenizer.eos_token_id
    ids = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=max_len - 1,
                    return_attention_mask=False)["input_ids"]
    return [seq if seq and seq[-1] == eos else seq + [eos] for seq in ids]


def pad(tokenizer, ids: list[list[int]]) -> dict[str, torch.Tensor]:
    """Pad to the longest sequence on the tokenizer's padding side."""
    batch = tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


@dataclass
class TrainCollator:
    """(query, passages) examples -> {"query": batch, "passage": batch, ...}.

    Passages stay grouped by query, positive first: the layout the loss expects.
    Multi-task: an example's "task" picks its prefixes from task_instructions; a
    batch of one task carries "task"; when every passage has a teacher "score",
    the batch carries "teacher_scores" (n_queries, group_size) for distillation.
    """
    tokenizer: object
    query_max_len: int = 32
    passage_max_len: int = 128
    query_prefix: str = ""
    passage_prefix: str = ""
    task_instructions: Optional[dict] = None

    def prefixes(self, task: str) -> tuple[str, str]:
        spec = (self.task_instructions or {}).get(task, {})
        return spec.get("query_prefix", self.query_prefix), spec.get("passage_prefix", self.passage_prefix)

    def __call__(self, examples: list[dict]) -> dict:
        queries, passages = [], []
        for ex in examples:
            q_prefix, p_prefix = self.prefixes(ex.get("task", ""))
            queries.append(format_text(ex["query"], q_prefix))
            passages += [format_text(p["text"], p_prefix, p.get("title", "")) for p in ex["passages"]]
        batch = {
            "query": pad(self.tokenizer, tokenize(self.tokenizer, queries, self.query_max_len)),
            "passage": pad(self.tokenizer, tokenize(self.tokenizer, passages, self.passage_max_len)),
        }
        tasks = {ex.get("task", "") for ex in examples}
        if len(tasks) == 1 and "" not in tasks:
            batch["task"] = tasks.pop()
        if all("score" in p for ex in examples for p in ex["passages"]):
            batch["teacher_scores"] = torch.tensor([[float(p["score"]) for p in ex["passages"]] for ex in examples])
        return batch


def tokenize_pairs(tokenizer, queries: list[str], passages: list[str], query_max_len: int,
                   max_len: int) -> list[list[int]]:
    """Token ids of (query, passage) pairs for the re-ranker: query, then passage, then EOS.

    The query keeps up to query_max_len tokens (special tokens such as BOS included);
    the passage fills the rest of max_len; EOS is always last.
    """
    if max_len <= query_max_len:
        raise ValueError(f"max_len ({max_len}) must exceed query_max_len ({query_max_len})")
    eos = tokenizer.eos_token_id
    q_ids = tokenizer(queries, add_special_tokens=True, truncation=True, max_length=query_max_len,
                      return_attention_mask=False)["input_ids"]
    p_ids = tokenizer(passages, add_special_tokens=False, truncation=True, max_length=max_len - 1,
                      return_attention_mask=False)["input_ids"]
    pairs = []
    for q, p in zip(q_ids, p_ids):
        q = q[:-1] if q and q[-1] == eos else q  # the pair has one EOS, at the end
        pairs.append(q + p[: max_len - 1 - len(q)] + [eos])
    return pairs


@dataclass
class RerankCollator:
    """(query, passages) examples -> {"pairs": batch, "group_size": P} for the re-ranker.

    Pairs stay grouped by query, positive first: the layout the listwise loss expects.
    """
    tokenizer: object
    query_max_len: int = 32
    max_len: int = 160
    query_prefix: str = ""
    passage_prefix: str = ""

    def pair_ids(self, queries: list[str], passages: list[dict]) -> list[list[int]]:
        """Token ids of each (query, passage) pair; passages are {"text", "title"?} dicts."""
        queries = [format_text(q, self.query_prefix) for q in queries]
        passages = [format_text(p["text"], self.passage_prefix, p.get("title", "")) for p in passages]
        return tokenize_pairs(self.tokenizer, queries, passages, self.query_max_len, self.max_len)

    def __call__(self, examples: list[dict]) -> dict:
        queries = [ex["query"] for ex in examples for _ in ex["passages"]]
        passages = [p for ex in examples for p in ex["passages"]]
        return {"pairs": pad(self.tokenizer, self.pair_ids(queries, passages)),
                "group_size": len(examples[0]["passages"])}

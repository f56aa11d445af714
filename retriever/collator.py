"""Text -> token ids: templates and prefixes, truncation inside the template, EOS, padding.

`tokenize` is the one place where a text is shaped for the model, following the
model's `EmbeddingSpec` (retriever.spec); training, encoding, mining and re-ranking
go through it.
"""
from dataclasses import dataclass, field
from typing import Optional

import torch

from retriever.spec import PLACEHOLDER, EmbeddingSpec, check_template

def join_title(text: str, title: str = "") -> str:
    """A passage as the model reads it: title, then body."""
    return f"{title} {text}".strip() if title else text


def format_text(text: str, prefix: str = "", title: str = "") -> str:
    """Prefix, then title, then body: the plain text BM25 and the re-ranker read."""
    return f"{prefix}{join_title(text, title)}"


def tokenize(tokenizer, texts: list[str], max_len: int, template: str = PLACEHOLDER,
             append_eos: bool = True) -> list[list[int]]:
    """The one place a text becomes token ids: template, truncation, EOS.

    Each text is put in `template` (at {text}) and the whole string is tokenised, so
    the ids equal what any other tool makes of that string. When it is longer than
    max_len (minus one for EOS), the text, and only the text, is cut: the template's
    head and tail are never truncated. With append_eos, EOS is added last, unless the
    tokenizer already ends every text with it (BERT's [SEP]).
    """
    head, tail = check_template(template).split(PLACEHOLDER)
    budget = max_len - 1 if append_eos and not ends_with_eos(tokenizer) else max_len
    full = tokenizer([head + t + tail for t in texts], add_special_tokens=True,
                     return_attention_mask=False)["input_ids"]
    eos = tokenizer.eos_token_id
    out = []
    for text, ids in zip(texts, full):
        if len(ids) > budget:
            ids = cut_text(tokenizer, text, head, tail, len(ids), budget, max_len, template)
        if append_eos and not (ids and ids[-1] == eos):
            ids = ids + [eos]
        out.append(ids)
    return out


def ends_with_eos(tokenizer) -> bool:
    """Whether the tokenizer itself ends every text with EOS (BERT's [SEP] as EOS)."""
    ids = tokenizer("a", add_special_tokens=True, return_attention_mask=False)["input_ids"]
    return bool(ids) and ids[-1] == tokenizer.eos_token_id


def cut_text(tokenizer, text: str, head: str, tail: str, n_full: int, budget: int, max_len: int,
             template: str) -> list[int]:
    """Ids of head + (the text cut at a token boundary) + tail, at most `budget` long."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=tokenizer.is_fast)
    text_ids = enc["input_ids"]
    keep = len(text_ids) - (n_full - budget)  # text tokens that fit next to the template
    while True:
        if keep < 1:
            raise ValueError(f"max_len {max_len} leaves no room for the text in the template {template!r}: "
                             "raise the max length or shorten the template")
        if tokenizer.is_fast:
            cut = text[: enc["offset_mapping"][keep - 1][1]]
        else:
            cut = tokenizer.decode(text_ids[:keep])
        ids = tokenizer(head + cut + tail, add_special_tokens=True, return_attention_mask=False)["input_ids"]
        if len(ids) <= budget:
            return ids
        keep -= len(ids) - budget  # re-tokenising at the cut merged differently: cut further


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

    def __call__(self, examples: list[dict]) -> dict:
        query_ids, passage_ids = [], []
        for ex in examples:  # per example: its task may bring its own prefixes
            task = ex.get("task") if ex.get("task") in self.spec.task_instructions else None
            query_ids += self.spec.tokenize(self.tokenizer, [ex["query"]], "query", task)
            passage_ids += self.spec.tokenize(self.tokenizer, [join_title(p["text"], p.get("title", ""))
                                                              for p in ex["passages"]], "passage", task)
        batch = {"query": pad(self.tokenizer, query_ids), "passage": pad(self.tokenizer, passage_ids)}
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

    @classmethod
    def from_spec(cls, tokenizer, spec: EmbeddingSpec) -> "RerankCollator":
        """A pair is at most query_max_len + passage_max_len tokens, with the spec's prefixes."""
        return cls(tokenizer, spec.query_max_len, spec.query_max_len + spec.passage_max_len,
                   spec.query_prefix, spec.passage_prefix)

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

"""Text -> token ids: the one place a text is shaped for a model.

Templates and prefixes, truncation inside the template, EOS, and the probes that ask a
tokenizer what it adds around every text. Training, encoding, mining, the re-ranker and
the sentence-transformers files (modeling/st_format.py) all go through here, following
the model's spec (retriever.spec); `collator.py` only batches what this returns.
"""
import functools
from typing import Optional

from retriever.spec import PLACEHOLDER, EmbeddingSpec, check_template


def content_free_last_token(tokenizer, spec: EmbeddingSpec) -> Optional[str]:
    """A warning when last-token pooling would read a chat model's EOS with no prompt around
    the text (the course's defaults on the offline default model): that state predicts the next
    chat turn, carries no content, and training from it collapses. None otherwise."""
    plain = spec.query_template == PLACEHOLDER and spec.passage_template == PLACEHOLDER
    if spec.pooling != "last" or not spec.append_eos or not plain or not getattr(tokenizer, "chat_template", None):
        return None
    return (f"the base model is a chat model (it has a chat template) and last-token pooling will read its "
            f"EOS {tokenizer.eos_token!r} after the bare text: that state carries no content and training from "
            "it collapses (loss stuck near ln(batch passages)). Wrap the text in a summarising template with "
            "EOS off, as retriever/recipes/demo_cpu.json does (query_template, passage_template, append_eos false; "
            "README, \"Why the default model needs a template\")")


def join_title(text: str, title: str = "") -> str:
    """A passage as the model reads it: title, then body."""
    return f"{title} {text}".strip() if title else text


def format_text(text: str, prefix: str = "", title: str = "") -> str:
    """Prefix, then title, then body: the plain text BM25 and the re-ranker read."""
    return f"{prefix}{join_title(text, title)}"


def tokenize_as(spec: EmbeddingSpec, tokenizer, texts: list[str], kind: str,
                task: Optional[str] = None) -> list[list[int]]:
    """Token ids of "query" or "passage" texts as the spec shapes them (the task's prefix, the
    template, truncation, EOS)."""
    return tokenize(tokenizer, texts, spec.max_len(kind), spec.template(kind, task), spec.append_eos)


def tokenize(tokenizer, texts: list[str], max_len: int, template: str = PLACEHOLDER,
             append_eos: bool = True) -> list[list[int]]:
    """The one place a text becomes token ids: template, truncation, EOS.

    Each text is put in `template` (at {text}) and the whole string is tokenised, so
    the ids equal what any other tool makes of that string; with append_eos, EOS is
    added last, unless the tokenizer already ends every text with it (BERT's [SEP]).
    When the result is longer than max_len, the text, and only the text, is cut: the
    ids that end every text (the template's tail, closing special tokens, EOS) are
    kept and the ids before them are cut, so the last token is the one it would be
    without truncation. (sentence-transformers truncates the same way when it renders
    a template, which is how a saved model gives it our vectors: modeling/st_format.)
    """
    head, tail = check_template(template).split(PLACEHOLDER)
    add_eos = append_eos and not ends_with_eos(tokenizer)
    eos = [tokenizer.eos_token_id] if add_eos else []
    full = tokenizer([head + t + tail for t in texts], add_special_tokens=True,
                     return_attention_mask=False)["input_ids"]
    out = []
    for ids in full:
        if not (ids and ids[-1] == tokenizer.eos_token_id):  # a text may end with EOS already
            ids = ids + eos
        if len(ids) >= max_len:  # at the limit too, as sentence-transformers does: the same ids
            ending = template_ending(tokenizer, head, tail, tuple(eos), max_len)
            ids = ids[: max_len - len(ending)] + ending
        out.append(ids)
    return out


# The probes below ask the tokenizer the same question for every batch: answered once per
# tokenizer (and template), since the collator tokenizes example by example.
@functools.lru_cache(maxsize=64)
def special_ends(tokenizer) -> tuple[list[int], list[int]]:
    """Ids the tokenizer puts before and after every text (a BOS; BERT's [CLS] ... [SEP])."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    return [], []


def ends_with_eos(tokenizer) -> bool:
    """Whether the tokenizer itself ends every text with EOS (BERT's [SEP] as EOS)."""
    trail = special_ends(tokenizer)[1]
    return bool(trail) and trail[-1] == tokenizer.eos_token_id


# The fillers sentence-transformers renders a chat template around to find its tail ("0" and "4" are
# single tokens in every real vocabulary). Where they read as one token ([UNK] in a vocabulary without
# digits), two words of the tokenizer's own vocabulary are the fillers instead.
ST_FILLERS = ("0", "1 2 3 4")


def st_probe_is_blind(tokenizer) -> bool:
    """Whether sentence-transformers' fillers end in the same token for this tokenizer: it then cannot
    find a template's tail, and truncates it away."""
    first, second = (tokenizer(filler, add_special_tokens=False)["input_ids"] for filler in ST_FILLERS)
    return bool(first) and bool(second) and first[-1] == second[-1]


@functools.lru_cache(maxsize=64)
def probe_fillers(tokenizer) -> tuple[str, str]:
    """Two texts that end in different tokens: sentence-transformers' own, or two ordinary words of the vocabulary."""
    if not st_probe_is_blind(tokenizer):
        return ST_FILLERS
    special, words = set(tokenizer.all_special_ids), []
    for token_id in range(len(tokenizer)):
        word = tokenizer.convert_ids_to_tokens(token_id)
        if token_id not in special and isinstance(word, str) and len(word) >= 3 and word.isascii() \
                and word.isalpha() and tokenizer(word, add_special_tokens=False)["input_ids"] == [token_id]:
            words.append(word)
            if len(words) == 2:
                return words[0], f"{words[1]} {words[1]} {words[1]}"
    raise ValueError("the tokenizer reads '0' and '1 2 3 4' as one token and has no two plain words to "
                     "find a template's tail with; use a template without a tail, or no truncation")


@functools.lru_cache(maxsize=64)
def template_ending(tokenizer, head: str, tail: str, eos: tuple[int, ...], max_len: int) -> list[int]:
    """The ids that end every text in the template: the longest common suffix of the template rendered
    around two different texts (probe_fillers: sentence-transformers' "0" and "1 2 3 4", so the two
    truncate alike, or two words of the vocabulary where those read as one token)."""
    a, b = (tokenizer(head + filler + tail, add_special_tokens=True, return_attention_mask=False)["input_ids"]
            + list(eos) for filler in probe_fillers(tokenizer))
    n = common_length(a[::-1], b[::-1])
    if max_len - n - common_length(a, b) < 1:  # the common prefix: BOS and the template's head
        raise ValueError(f"max_len {max_len} leaves no room for the text in the template {head + PLACEHOLDER + tail!r}: "
                         "raise the max length or shorten the template")
    return a[len(a) - n:] if n else []


def common_length(a: list, b: list) -> int:
    """Length of the common prefix of two lists."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


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

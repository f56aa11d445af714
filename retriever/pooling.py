"""Poolings: how (batch, seq, hidden) states become one (batch, hidden) vector per text.

One entry per pooling in `POOLINGS`: its function, the name sentence-transformers gives
it (the saved model's 1_Pooling/config.json) and how the model card describes it.
Adding a pooling is one entry here and one test (tests/test_pooling.py).

Positions are read from the attention mask, never from token ids, so every pooling is
right for right padding, left padding and pad id == EOS id alike. Nothing here imports
torch: the functions use tensor methods only, so the spec can name the poolings without
loading torch.
"""
from dataclasses import dataclass
from typing import Callable


def hidden_at(hidden, positions):
    """hidden[i, positions[i]] for every row i: (batch, seq, dim), (batch,) -> (batch, dim)."""
    return hidden.gather(1, positions.view(-1, 1, 1).expand(-1, 1, hidden.size(-1))).squeeze(1)


def last_token(last_hidden_state, attention_mask):
    """The state of each sequence's last real token (the EOS, when one is appended)."""
    # >>> graded: pool-last
    mask = attention_mask.bool()  # (batch, seq)
    last = mask.size(1) - 1 - mask.flip(dims=[1]).int().argmax(dim=1)  # (batch,) last 1 of each mask row
    return hidden_at(last_hidden_state, last)
    # <<< graded: pool-last


def first_token(last_hidden_state, attention_mask):
    """The state of each sequence's first real token (BERT's [CLS])."""
    return hidden_at(last_hidden_state, attention_mask.int().argmax(dim=1))


def mean_of_tokens(last_hidden_state, attention_mask):
    """The average of the real tokens' states."""
    weights = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (batch, seq, 1)
    return (last_hidden_state * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


@dataclass(frozen=True)
class Pooling:
    name: str  # the --pooling value and the spec's
    function: Callable  # (last_hidden_state, attention_mask) -> (batch, hidden)
    st_name: str  # sentence-transformers' pooling_mode
    description: str  # for the model card: "<description> pooling"


POOLINGS = {p.name: p for p in (
    Pooling("last", last_token, "lasttoken", "last-token"),
    Pooling("mean", mean_of_tokens, "mean", "mean"),
    Pooling("cls", first_token, "cls", "first-token"),
)}
POOLING_NAMES = tuple(POOLINGS)


def get_pooling(name: str, flag: str = "pooling") -> Pooling:
    if name not in POOLINGS:
        raise ValueError(f"{flag} must be one of {', '.join(POOLINGS)}; got '{name}'")
    return POOLINGS[name]


def pool(last_hidden_state, attention_mask, name: str = "last"):
    """(batch, seq, hidden) -> (batch, hidden) with the named pooling."""
    return get_pooling(name).function(last_hidden_state, attention_mask)

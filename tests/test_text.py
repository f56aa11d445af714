"""Text shaping: templates, truncation inside the template, EOS, prefixes and titles."""
import pytest

from retriever.text import format_text, tokenize
from tests.conftest import make_tokenizer

TEMPLATE = "what is {text} in the sun"  # words of the tiny vocabulary, so tokens read back as words


def words(tokenizer, ids):
    return tokenizer.convert_ids_to_tokens(ids)


def test_eos_is_last_even_after_truncation(tokenizer):
    long_text = " ".join(["apple"] * 50)
    ids = tokenize(tokenizer, [long_text, "sun"], max_len=8)
    assert len(ids[0]) == 8 and ids[0][-1] == tokenizer.eos_token_id
    assert ids[1] == [tokenizer.convert_tokens_to_ids("sun"), tokenizer.eos_token_id]


def test_eos_is_not_doubled_when_text_already_ends_with_it(tokenizer):
    ids = tokenize(tokenizer, ["sun </s>"], max_len=8)[0]
    assert ids.count(tokenizer.eos_token_id) == 1


def test_prefix_and_title_come_before_the_text():
    assert format_text("body", "query: ") == "query: body"
    assert format_text("body", "passage: ", title="Title") == "passage: Title body"


def test_template_wraps_the_text_and_eos_comes_last(tokenizer):
    ids = tokenize(tokenizer, ["apple tree"], max_len=16, template=TEMPLATE)[0]
    assert words(tokenizer, ids) == ["what", "is", "apple", "tree", "in", "the", "sun", "</s>"]


def test_truncation_cuts_the_text_inside_the_template_never_its_tail_or_eos(tokenizer):
    long_text = " ".join(["apple", "banana", "cherry", "dog"] * 10)
    ids = tokenize(tokenizer, [long_text, "dog"], max_len=9, template=TEMPLATE)
    assert words(tokenizer, ids[0]) == ["what", "is", "apple", "banana", "cherry", "in", "the", "sun", "</s>"]
    assert words(tokenizer, ids[1]) == ["what", "is", "dog", "in", "the", "sun", "</s>"]


def test_without_eos_the_last_token_is_the_templates_last_token(tokenizer):
    long_text = " ".join(["apple"] * 40)
    ids = tokenize(tokenizer, [long_text, "dog"], max_len=8, template=TEMPLATE, append_eos=False)
    assert words(tokenizer, ids[0]) == ["what", "is", "apple", "apple", "apple", "in", "the", "sun"]
    assert words(tokenizer, ids[1]) == ["what", "is", "dog", "in", "the", "sun"]


def test_plain_text_truncation_keeps_max_len_minus_one_tokens_then_eos(tokenizer):
    ids = tokenize(tokenizer, ["apple banana cherry dog eagle fish"], max_len=4)[0]
    assert words(tokenizer, ids) == ["apple", "banana", "cherry", "</s>"]


def test_template_needs_exactly_one_placeholder_and_room_for_text(tokenizer):
    import pytest

    with pytest.raises(ValueError, match=r"must contain '\{text\}' exactly once"):
        tokenize(tokenizer, ["apple"], max_len=8, template="no placeholder")
    with pytest.raises(ValueError, match="leaves no room for the text"):
        tokenize(tokenizer, ["apple banana cherry"], max_len=6, template=TEMPLATE)


@pytest.mark.parametrize("digits", [True, False])
def test_truncation_keeps_exactly_the_template_tail_whatever_the_vocabulary(digits):
    # reliability round 3, case 10: without digit tokens, "0" and "1 2 3 4" both read as [UNK], and the
    # probe took one [UNK] for part of the tail; a word of the vocabulary tells them apart
    tok = make_tokenizer(digits=digits)
    long_text = " ".join(["apple banana cherry dog"] * 10)
    tokens = tok.convert_ids_to_tokens(tokenize(tok, [long_text], 12, "what is {text} in the night", True)[0])
    assert tokens == ["what", "is", "apple", "banana", "cherry", "dog", "apple", "banana", "in", "the", "night",
                      "</s>"]

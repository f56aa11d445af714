import pytest

from retriever.collator import TrainCollator, format_text, tokenize
from retriever.spec import EmbeddingSpec
from tests.conftest import make_tokenizer


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


def test_collator_pads_right_keeps_groups_and_prefixes(tokenizer):
    collate = TrainCollator(tokenizer, EmbeddingSpec(query_max_len=4, passage_max_len=6,
                                                  query_prefix="what ", passage_prefix="the "))
    batch = collate([
        {"query": "apple", "passages": [{"text": "apple tree"}, {"text": "sun"}]},
        {"query": "river ocean water", "passages": [{"text": "river", "title": "water"}, {"text": "dog"}]},
    ])
    q, p = batch["query"], batch["passage"]
    assert q["input_ids"].shape[0] == 2 and p["input_ids"].shape[0] == 4
    first_query = tokenizer.convert_ids_to_tokens(q["input_ids"][0][q["attention_mask"][0].bool()].tolist())
    assert first_query == ["what", "apple", "</s>"]
    third_passage = tokenizer.convert_ids_to_tokens(p["input_ids"][2][p["attention_mask"][2].bool()].tolist())
    assert third_passage == ["the", "water", "river", "</s>"]
    # right padding: every row's mask is 1s then 0s, and the last real token is EOS
    for ids, mask in zip(p["input_ids"], p["attention_mask"]):
        n = int(mask.sum())
        assert mask[:n].all() and not mask[n:].any() and ids[n - 1] == tokenizer.eos_token_id
    assert q["input_ids"].shape[1] <= 4


# ---- prompt templates: the text is cut, never the template or the EOS ----------------------
TEMPLATE = "what is {text} in the sun"  # words of the tiny vocabulary, so tokens read back as words


def words(tokenizer, ids):
    return tokenizer.convert_ids_to_tokens(ids)


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


def test_collator_applies_prefix_then_template_to_title_and_text(tokenizer):
    collate = TrainCollator(tokenizer, EmbeddingSpec(query_template="what {text}", passage_template="{text} sun",
                                                  passage_prefix="the ", append_eos=False, passage_max_len=5))
    batch = collate([{"query": "apple", "passages": [{"text": "river dog fish tree", "title": "water"}]}])
    assert words(tokenizer, batch["passage"]["input_ids"][0].tolist()) == ["the", "water", "river", "dog", "sun"]
    assert words(tokenizer, batch["query"]["input_ids"][0].tolist()) == ["what", "apple"]



def test_a_chat_model_read_at_eos_without_a_template_is_warned_once_when_training_starts(caplog):
    chat = make_tokenizer()
    chat.chat_template = "{% for m in messages %}{{ m['content'] }}</s>{% endfor %}"
    with caplog.at_level("WARNING", logger="retriever.collator"):
        TrainCollator(chat, EmbeddingSpec())  # the course's defaults: last token, EOS appended, no template
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "chat model" in message and "retriever/recipes/demo_cpu.sh" in message
    assert "Why the default model needs a template" in message
    caplog.clear()
    with caplog.at_level("WARNING", logger="retriever.collator"):
        TrainCollator(chat, EmbeddingSpec(query_template='Q: "{text}" means:', passage_template='P: "{text}" means:',
                                          append_eos=False))  # the recipe
        TrainCollator(chat, EmbeddingSpec(pooling="mean"))  # mean pooling does not read the EOS alone
        TrainCollator(make_tokenizer(), EmbeddingSpec())  # not a chat model: the course's own setting
    assert not caplog.records


@pytest.mark.parametrize("digits", [True, False])
def test_truncation_keeps_exactly_the_template_tail_whatever_the_vocabulary(digits):
    # reliability round 3, case 10: without digit tokens, "0" and "1 2 3 4" both read as [UNK], and the
    # probe took one [UNK] for part of the tail; a word of the vocabulary tells them apart
    tok = make_tokenizer(digits=digits)
    long_text = " ".join(["apple banana cherry dog"] * 10)
    tokens = tok.convert_ids_to_tokens(tokenize(tok, [long_text], 12, "what is {text} in the night", True)[0])
    assert tokens == ["what", "is", "apple", "banana", "cherry", "dog", "apple", "banana", "in", "the", "night",
                      "</s>"]


def test_a_tokenizer_sentence_transformers_cannot_probe_is_warned_about_at_save(tmp_path, caplog):
    from retriever.modeling.st_format import write_st_files

    spec = EmbeddingSpec(query_template="what is {text} in the night", passage_template="{text} in the night")
    with caplog.at_level("WARNING", logger="retriever.modeling.st_format"):
        write_st_files(tmp_path, spec, make_tokenizer(), 32)
    assert not caplog.records
    with caplog.at_level("WARNING", logger="retriever.modeling.st_format"):
        write_st_files(tmp_path, spec, make_tokenizer(digits=False), 32)
    assert "sentence-transformers finds a template's tail" in caplog.text and "'1 2 3 4'" in caplog.text

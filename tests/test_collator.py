"""Training batches: groups kept together, prefixes and templates applied, the chat-model warning."""
from retriever.collator import TrainCollator
from retriever.spec import EmbeddingSpec
from tests.conftest import make_tokenizer


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


def words(tokenizer, ids):
    return tokenizer.convert_ids_to_tokens(ids)


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
    assert "chat model" in message and "retriever/recipes/demo_cpu.json" in message
    assert "Why the default model needs a template" in message
    caplog.clear()
    with caplog.at_level("WARNING", logger="retriever.collator"):
        TrainCollator(chat, EmbeddingSpec(query_template='Q: "{text}" means:', passage_template='P: "{text}" means:',
                                          append_eos=False))  # the recipe
        TrainCollator(chat, EmbeddingSpec(pooling="mean"))  # mean pooling does not read the EOS alone
        TrainCollator(make_tokenizer(), EmbeddingSpec())  # not a chat model: the course's own setting
    assert not caplog.records

from retriever.collator import TrainCollator, format_text, tokenize


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
    collate = TrainCollator(tokenizer, query_max_len=4, passage_max_len=6,
                            query_prefix="what ", passage_prefix="the ")
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

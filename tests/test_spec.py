import json

import pytest

from retriever.spec import SPEC_FILE, EmbeddingSpec, read_spec


def test_spec_round_trips_through_the_model_directory(tmp_path):
    spec = EmbeddingSpec(pooling="mean", normalize=False, temperature=0.05, query_template="q: {text}",
                         passage_template="p: {text}.", append_eos=False, query_max_len=16, passage_max_len=64,
                         task_instructions={"t": {"query_prefix": "T "}}, base_model="base", lora=True)
    spec.save(tmp_path)
    assert read_spec(tmp_path) == spec
    assert read_spec(tmp_path).template("query", "t") == "T q: {text}"


def test_a_trained_models_spec_wins_over_the_base_model_defaults(tmp_path):
    EmbeddingSpec(pooling="mean").save(tmp_path)
    assert read_spec(tmp_path, pooling="cls", padding_side="left").pooling == "mean"
    assert read_spec(tmp_path / "base", pooling="cls", padding_side="left") == \
        EmbeddingSpec(pooling="cls", padding_side="left")


def test_a_model_saved_before_the_spec_is_read_from_its_two_old_files(tmp_path):
    (tmp_path / "retriever_config.json").write_text(json.dumps(
        {"pooling": "mean", "normalize": False, "temperature": 0.05, "base_model": "b", "lora": False}))
    (tmp_path / "text_format.json").write_text(json.dumps(
        {"query_template": "q {text}", "append_eos": False, "query_max_len": 9, "padding_side": "left"}))
    spec = read_spec(tmp_path, pooling="last")
    assert (spec.pooling, spec.normalize, spec.temperature, spec.base_model) == ("mean", False, 0.05, "b")
    assert (spec.query_template, spec.append_eos, spec.query_max_len, spec.padding_side) == \
        ("q {text}", False, 9, "left")
    assert spec.passage_max_len == EmbeddingSpec.passage_max_len


def test_a_damaged_spec_file_is_named(tmp_path):
    (tmp_path / SPEC_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=SPEC_FILE):
        read_spec(tmp_path)
    (tmp_path / SPEC_FILE).write_text('{"pooling": "max"}')
    with pytest.raises(ValueError, match=f"{SPEC_FILE}: pooling must be one of"):
        read_spec(tmp_path)


def test_a_spec_rejects_an_unknown_pooling_and_a_template_without_text():
    with pytest.raises(ValueError, match="pooling"):
        EmbeddingSpec(pooling="max")
    with pytest.raises(ValueError, match="query_template"):
        EmbeddingSpec(query_template="no placeholder")

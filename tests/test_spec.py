import json
import re

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
    write_spec(tmp_path, pooling="max")
    with pytest.raises(ValueError, match=f"{SPEC_FILE}: pooling must be one of"):
        read_spec(tmp_path)


def write_spec(model_dir, drop=(), **changes):
    """A saved spec file with some values changed (or keys dropped), as a hand edit would leave it."""
    EmbeddingSpec(query_template='Q "{text}" means:', append_eos=False).save(model_dir)
    values = json.loads((model_dir / SPEC_FILE).read_text())
    values = {k: v for k, v in {**values, **changes}.items() if k not in drop}
    (model_dir / SPEC_FILE).write_text(json.dumps(values))


# Reliability round 3, cases 1-3, 11, 12: a hand-edited spec never silently changes the vectors.
def test_a_spec_without_a_field_is_refused_naming_it_not_filled_with_a_default(tmp_path):
    write_spec(tmp_path, drop=("query_template",))
    with pytest.raises(ValueError, match=f"{SPEC_FILE}: field 'query_template' is missing"):
        read_spec(tmp_path)


def test_a_misspelt_spec_key_is_refused_with_the_nearest_known_one(tmp_path):
    write_spec(tmp_path, drop=("query_template",), query_tempalte='Q "{text}" means:')
    with pytest.raises(ValueError, match=f"{SPEC_FILE}: unknown field 'query_tempalte' .did you mean 'query_template'"):
        read_spec(tmp_path)


@pytest.mark.parametrize("field,value,rule", [("append_eos", "false", "a JSON boolean .true/false."),
                                              ("normalize", 1, "a JSON boolean .true/false."),
                                              ("query_max_len", 0, "positive int"),
                                              ("query_max_len", "8", "positive int"),
                                              ("passage_max_len", 12.5, "positive int"),
                                              ("temperature", "0.02", "positive number"),
                                              ("task_instructions", [], "a JSON object")])
def test_a_spec_value_of_the_wrong_type_is_refused_naming_file_and_field(tmp_path, field, value, rule):
    write_spec(tmp_path, **{field: value})
    with pytest.raises(ValueError, match=f"{SPEC_FILE}: field '{field}' must be {rule}; got {re.escape(json.dumps(value))}"):
        read_spec(tmp_path)


def test_a_spec_is_saved_with_its_version_and_a_version_1_file_still_loads(tmp_path):
    EmbeddingSpec(pooling="mean").save(tmp_path)
    assert json.loads((tmp_path / SPEC_FILE).read_text())["version"] == 2
    write_spec(tmp_path, drop=("version",))  # as the first embedding_spec.json files were written
    assert read_spec(tmp_path).query_template == 'Q "{text}" means:'
    write_spec(tmp_path, version=7)
    with pytest.raises(ValueError, match="version 7 is not one this code reads"):
        read_spec(tmp_path)


def test_a_directory_that_looks_trained_but_lost_its_spec_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert read_spec(tmp_path) == EmbeddingSpec()  # a base model: the defaults
    (tmp_path / "train_log.json").write_text("[]")
    with pytest.raises(FileNotFoundError, match=f"looks like a trained model .train_log.json. but has no {SPEC_FILE}"):
        read_spec(tmp_path)


def test_a_spec_rejects_an_unknown_pooling_and_a_template_without_text():
    with pytest.raises(ValueError, match="pooling"):
        EmbeddingSpec(pooling="max")
    with pytest.raises(ValueError, match="query_template"):
        EmbeddingSpec(query_template="no placeholder")

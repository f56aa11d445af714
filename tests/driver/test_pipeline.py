"""End to end: a tiny random decoder trains a few steps, then encode, search, evaluate."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retriever.driver import encode, search, train
from retriever.io import DataError

REPO = Path(__file__).resolve().parents[2]
TRAIN_FLAGS = ["--max_steps", "3", "--per_device_train_batch_size", "4", "--train_group_size", "3",
               "--learning_rate", "1e-3", "--query_max_len", "8", "--passage_max_len", "12"]


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tiny_groups, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                "--output_dir", str(out), *TRAIN_FLAGS])
    return out


def test_train_writes_model_log_and_loss_curve(trained):
    for name in ("config.json", "model.safetensors", "embedding_spec.json", "tokenizer.json", "modules.json",
                 "README.md", "train_log.json", "loss_curve.png"):
        assert (trained / name).is_file(), name
    log = json.loads((trained / "train_log.json").read_text())
    assert [e["step"] for e in log] == [1, 2, 3] and all(np.isfinite(e["loss"]) for e in log)
    assert (trained / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((trained / "embedding_spec.json").read_text())["passage_max_len"] == 12


def test_encode_search_evaluate_after_training(trained, tiny_beir, tmp_path):
    for shard in (0, 1):  # two shards: search must read both
        encode.main(["--model_name_or_path", str(trained), "--data_dir", str(tiny_beir), "--num_shards", "2",
                     "--shard_id", str(shard), "--output_file", str(tmp_path / f"corpus.shard{shard}.npz")])
    encode.main(["--model_name_or_path", str(trained), "--data_dir", str(tiny_beir), "--encode_is_query",
                 "--output_file", str(tmp_path / "queries.npz")])
    with np.load(tmp_path / "corpus.shard1.npz") as shard:
        assert shard["embeddings"].shape == (14, 32) and json.loads(str(shard["meta"]))["max_len"] == 12
    metrics = search.main(["--query_embeddings", str(tmp_path / "queries.npz"),
                           "--corpus_embeddings", str(tmp_path / "corpus.shard*.npz"),
                           "--qrels", str(tiny_beir), "--output_dir", str(tmp_path / "search")])
    for name in ("MRR@10", "nDCG@10", "Recall@100"):
        assert 0.0 <= metrics[name] <= 1.0
    assert metrics["Recall@100"] == 1.0  # depth 100 > 28 docs: every relevant doc is found
    run_lines = (tmp_path / "search" / "run.trec").read_text().splitlines()
    assert len(run_lines) == 14 * 28
    assert json.loads((tmp_path / "search" / "metrics.json").read_text())["MRR@10"] == metrics["MRR@10"]
    for index_type in ("ivf", "hnsw"):  # tiny corpus: approximate indexes find everything too
        approx = search.main(["--query_embeddings", str(tmp_path / "queries.npz"), "--index_type", index_type,
                              "--corpus_embeddings", str(tmp_path / "corpus.shard*.npz"),
                              "--qrels", str(tiny_beir), "--output_dir", str(tmp_path / index_type)])
        assert approx["Recall@100"] == 1.0 and approx["MRR@10"] == pytest.approx(metrics["MRR@10"])


def test_embeddings_from_different_models_are_refused(trained, tiny_model_dir, tiny_beir, tmp_path):
    encode.main(["--model_name_or_path", str(trained), "--data_dir", str(tiny_beir),
                 "--output_file", str(tmp_path / "corpus.npz")])
    encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), "--encode_is_query",
                 "--output_file", str(tmp_path / "queries.npz")])
    with pytest.raises(DataError, match="differ in 'model'"):
        search.main(["--query_embeddings", str(tmp_path / "queries.npz"),
                     "--corpus_embeddings", str(tmp_path / "corpus.npz"), "--output_dir", str(tmp_path / "s")])


@pytest.mark.parametrize("extra", [["--activation_checkpointing", "True"],
                                   ["--lora", "True", "--lora_r", "4", "--lora_target_modules", "q_proj,v_proj",
                                    "--activation_checkpointing", "True"]],
                         ids=["full", "lora"])
def test_training_with_activation_checkpointing(tiny_model_dir, tiny_groups, tmp_path, extra):
    out = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                      "--output_dir", str(tmp_path), *TRAIN_FLAGS[2:], "--max_steps", "2", *extra])
    log = json.loads((out / "train_log.json").read_text())
    assert len(log) == 2 and all(np.isfinite(e["loss"]) and e["grad_norm"] > 0 for e in log)


def test_encode_several_poolings_in_one_pass_equals_one_pass_each(tiny_model_dir, tiny_beir, tmp_path):
    common = ["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir)]
    outputs = encode.main([*common, "--poolings", "last,mean", "--output_file", str(tmp_path / "{pooling}.npz")])
    assert sorted(outputs) == [str(tmp_path / "last.npz"), str(tmp_path / "mean.npz")]
    for pooling in ("last", "mean"):
        single = encode.main([*common, "--pooling", pooling, "--output_file", str(tmp_path / f"one-{pooling}.npz")])
        with np.load(tmp_path / f"{pooling}.npz") as both, np.load(single) as one:
            np.testing.assert_allclose(both["embeddings"], one["embeddings"], rtol=1e-5, atol=1e-6)
            assert json.loads(str(both["meta"]))["pooling"] == pooling
    with pytest.raises(ValueError, match="needs '\\{pooling\\}'"):
        encode.main([*common, "--poolings", "last,mean", "--output_file", str(tmp_path / "x.npz")])


def test_template_and_eos_choice_are_saved_with_the_model_and_reused_by_encode(tiny_model_dir, tiny_groups,
                                                                               tiny_beir, tmp_path):
    from retriever.text import join_title
    from retriever.data import load_corpus
    from retriever.encoding import encode_texts, load_encoder

    template = "what is {text} in the sun"
    out = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir",
                      str(tmp_path / "m"), *TRAIN_FLAGS[2:], "--max_steps", "1", "--passage_max_len", "10",
                      "--query_template", template, "--passage_template", template, "--append_eos", "False"])
    fmt = json.loads((out / "embedding_spec.json").read_text())
    assert (fmt["query_template"], fmt["passage_template"], fmt["append_eos"]) == (template, template, False)
    path = encode.main(["--model_name_or_path", str(out), "--data_dir", str(tiny_beir),
                        "--output_file", str(tmp_path / "corpus.npz")])
    model, tokenizer = load_encoder(str(out))
    docs = load_corpus(str(tiny_beir))
    by_hand = encode_texts(model, tokenizer, [join_title(d["text"], d["title"]) for d in docs], 10, 8,
                           template=template, append_eos=False)["last"]
    with np.load(path) as saved:
        meta = json.loads(str(saved["meta"]))
        assert (meta["template"], meta["append_eos"], meta["max_len"]) == (template, False, 10)
        np.testing.assert_allclose(saved["embeddings"], by_hand, rtol=1e-5, atol=1e-6)


def test_run_all_trains_evaluates_reranks_mines_round_2_and_reports(tiny_model_dir, tiny_arch_dirs, tiny_beir,
                                                                     tmp_path):
    # A BEIR dir with train and test qrels (the train split reuses the test queries: a smoke test).
    # Held-out sets go through the same evaluate() as the main set (HOLDOUT=""; see test_subset).
    data = tmp_path / "tinyset"
    shutil.copytree(tiny_beir, data)
    shutil.copyfile(data / "qrels" / "test.tsv", data / "qrels" / "train.tsv")
    env = {**os.environ, "PYTHON": sys.executable, "MODEL": tiny_model_dir, "DATA": str(data),
           "RUN_DIR": str(tmp_path / "run"), "HOLDOUT": "", "EVAL_DOCS": "20", "MAX_STEPS": "2",
           "TRAIN_BATCH_SIZE": "4", "QUERY_MAX_LEN": "16", "PASSAGE_MAX_LEN": "20", "LORA": "False",
           "MINILM": tiny_arch_dirs["bert"], "MINILM_MAX_LEN": "16",
           "RERANK": "1", "RERANK_DEPTH": "5", "ROUND2": "1", "MINE_QUERIES": "6", "MINE_DOCS": "20",
           "DEV_SET": str(data), "DEV_SPLIT": "test", "DEV_QUERIES": "6", "DEV_DOCS": "12"}
    done = subprocess.run(["bash", str(REPO / "retriever" / "scripts" / "run_all.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    # run_all.sh trains through the homework script, evaluates every model row with driver.evaluate
    assert all(tag in done.stdout for tag in ("[train]", "[rerank]", "MRR@10")) and "batch=4 " in done.stdout
    # one model load per model and set: each row encodes its corpus once and its queries once
    assert done.stderr.count("INFO __main__: encoding 20 passage texts") == 4  # zero-shot, fine-tuned, MiniLM, round 2
    assert (tmp_path / "run" / "tinyset" / "finetuned" / "index" / "index.faiss").is_file()
    rows = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [r["system"] for r in rows] == ["BM25", "zero-shot (last)", "fine-tuned (last)", "MiniLM (all-MiniLM-L6-v2)",
                                           "hybrid (BM25 + fine-tuned, minmax)",
                                           "hybrid (BM25 + fine-tuned, rrf)", "fine-tuned+re-ranker@5",
                                           "fine-tuned round 2 (last)"]
    assert all(r["set"] == "tinyset" and 0 <= r["nDCG@10"] <= 1 and r["seconds"] >= 0 for r in rows)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## tinyset" in report and "| nDCG@10 vs bm25 |" in report and "| queries |" in report
    assert rows[0]["nDCG@10 vs bm25"] == "(baseline)"
    assert all(re.search(r"\(p [=<] ", r["nDCG@10 vs bm25"]) for r in rows[1:])
    round2 = [json.loads(line) for line in (tmp_path / "run" / "train_groups.round2.jsonl").read_text().splitlines()]
    assert len(round2) == 6 and all(g["negative_passages"] for g in round2)
    assert (tmp_path / "run" / "model" / "loss_curve.png").is_file()
    # the demo recipe's template and no-EOS choice reach the trained model
    fmt = json.loads((tmp_path / "run" / "model" / "embedding_spec.json").read_text())
    assert fmt["query_template"] == 'This sentence : "{text}" means in one word:"' and fmt["append_eos"] is False
    # the dev set is watched during training: before, at EVAL_STEPS (MAX_STEPS / 2 = 1) and after the last step
    log = json.loads((tmp_path / "run" / "model" / "train_log.json").read_text())
    assert [e["step"] for e in log if "eval_nDCG@10" in e] == [0, 1, 2]


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


@pytest.mark.parametrize("missing", ["DATA", "HOLDOUT", "DEV_SET"])
def test_run_all_without_data_says_what_to_download(tiny_beir, tmp_path, missing):
    env = {**os.environ, "DATA": str(tiny_beir), "HOLDOUT": "", "DEV_SET": "", missing: str(tmp_path / "nowhere")}
    done = subprocess.run(["bash", str(REPO / "retriever" / "scripts" / "run_all.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "scifact.zip" in done.stderr and "nowhere" in done.stderr
    assert not (tmp_path / "runs").exists()  # nothing started


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "retriever" / "scripts").glob("*.sh")))
def test_every_script_parses_and_is_executable(script):
    path = REPO / "retriever" / "scripts" / script
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert os.access(path, os.X_OK)


def mrr_of(model_dir, tiny_beir, out):
    encode.main(["--model_name_or_path", str(model_dir), "--data_dir", str(tiny_beir),
                 "--output_file", str(out / "corpus.npz")])
    encode.main(["--model_name_or_path", str(model_dir), "--data_dir", str(tiny_beir), "--encode_is_query",
                 "--output_file", str(out / "queries.npz")])
    return search.main(["--query_embeddings", str(out / "queries.npz"), "--corpus_embeddings",
                        str(out / "corpus.npz"), "--qrels", str(tiny_beir), "--output_dir", str(out / "s")])["MRR@10"]


def test_training_improves_mrr_over_the_base_model_on_topic_separable_data(tiny_model_dir, tiny_groups, tiny_beir,
                                                                          tmp_path):
    model = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir",
                        str(tmp_path / "m"), *TRAIN_FLAGS[2:], "--max_steps", "12", "--learning_rate", "3e-3"])
    base, trained = mrr_of(tiny_model_dir, tiny_beir, tmp_path / "base"), mrr_of(model, tiny_beir, tmp_path / "t")
    assert trained > base + 0.05, (base, trained)  # measured: 0.315 -> 0.421 at this seed


def test_a_model_trained_with_mean_pooling_is_encoded_with_mean_pooling_by_default(tiny_model_dir, tiny_groups,
                                                                                  tiny_beir, tmp_path):
    from retriever.modeling import EncoderModel

    model = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir",
                        str(tmp_path / "m"), *TRAIN_FLAGS[2:], "--max_steps", "1", "--pooling", "mean"])
    path = encode.main(["--model_name_or_path", str(model), "--data_dir", str(tiny_beir),
                        "--output_file", str(tmp_path / "c.npz")])  # no --pooling: the saved one wins
    mean = encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), "--pooling", "mean",
                        "--output_file", str(tmp_path / "base-mean.npz")])
    with np.load(path) as saved, np.load(mean) as other:
        assert json.loads(str(saved["meta"]))["pooling"] == "mean"
        assert not np.allclose(saved["embeddings"], other["embeddings"])  # trained weights, mean pooled
    assert EncoderModel.load(str(model), pooling="last").spec.pooling == "mean"


def test_a_pooling_flag_a_trained_model_ignores_is_said_on_the_console(trained, tiny_beir, tmp_path, caplog):
    # reliability round 3, case 15: the trained model's own pooling wins, and the ignored flag is named
    with caplog.at_level("WARNING", logger="retriever.encoding"):
        path = encode.main(["--model_name_or_path", str(trained), "--data_dir", str(tiny_beir), "--pooling", "mean",
                            "--output_file", str(tmp_path / "c.npz")])
    with np.load(path) as saved:
        assert json.loads(str(saved["meta"]))["pooling"] == "last"
    assert "was trained with pooling last; ignoring --pooling mean" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="retriever.encoding"):
        encode.main(["--model_name_or_path", str(trained), "--data_dir", str(tiny_beir), "--pooling", "last",
                     "--output_file", str(tmp_path / "d.npz")])
    assert "ignoring" not in caplog.text


def test_trained_model_has_a_model_card_with_its_recipe_and_loss(trained):
    card = (trained / "README.md").read_text()
    log = json.loads((trained / "train_log.json").read_text())
    assert "- base model: `" in card and "(16 query groups of 3 passages)" in card
    assert f"final loss {log[-1]['loss']:.4f}" in card
    for flag in ("| `--max_steps` | `3` |", "| `--learning_rate` | `0.001` |", "| `--passage_max_len` | `12` |"):
        assert flag in card
    assert "`--seed`" not in card and "`--output_dir`" not in card  # defaults and places are not the recipe


def test_dev_metrics_during_training_are_logged_drawn_in_the_card_and_true(tiny_model_dir, tiny_groups, tiny_beir,
                                                                           tmp_path):
    out = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                      "--output_dir", str(tmp_path / "m"), *TRAIN_FLAGS,
                      "--eval_data_dir", str(tiny_beir), "--eval_split", "test", "--eval_steps", "2"])
    log = json.loads((out / "train_log.json").read_text())
    evals = [(e["step"], e["eval_MRR@10"], e["eval_nDCG@10"]) for e in log if "eval_MRR@10" in e]
    assert [step for step, _, _ in evals] == [0, 2, 3]  # the base model, every 2 steps, the final model
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3]
    card = (out / "README.md").read_text()
    assert "## Evaluation during training" in card
    assert all(f"| {step} | {mrr:.4f} | {ndcg:.4f} |" in card for step, mrr, ndcg in evals)
    # the last dev numbers are the saved model's own: encode + search + evaluate give the same
    for extra, name in (([], "corpus"), (["--encode_is_query"], "queries")):
        encode.main(["--model_name_or_path", str(out), "--data_dir", str(tiny_beir), *extra,
                     "--output_file", str(tmp_path / f"{name}.npz")])
    metrics = search.main(["--query_embeddings", str(tmp_path / "queries.npz"), "--corpus_embeddings",
                           str(tmp_path / "corpus.npz"), "--qrels", str(tiny_beir), "--output_dir", str(tmp_path / "s")])
    assert (metrics["MRR@10"], metrics["nDCG@10"]) == pytest.approx(evals[-1][1:], abs=1e-6)


def test_eval_steps_without_a_dev_set_is_refused(tiny_model_dir, tiny_groups, tmp_path):
    with pytest.raises(ValueError, match="--eval_steps needs --eval_data_dir"):
        train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                    "--output_dir", str(tmp_path / "m"), *TRAIN_FLAGS, "--eval_steps", "2"])


def test_a_dev_set_without_the_split_is_named_by_its_flag_before_training(tiny_model_dir, tiny_groups, tiny_beir,
                                                                          tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--eval_data_dir .* --eval_split dev: .*qrels/dev.tsv"):
        train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                    "--output_dir", str(tmp_path / "m"), *TRAIN_FLAGS, "--eval_data_dir", str(tiny_beir)])
    assert not (tmp_path / "m" / "train_log.json").exists()  # refused before a step was taken

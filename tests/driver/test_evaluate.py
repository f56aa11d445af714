"""driver.evaluate: one process, one model load, the same numbers as encode + search; the saved index
and driver.query over it with free text."""
import json
import shutil

import numpy as np
import pytest

from retriever.driver import encode, evaluate, search, train
from retriever.searcher import load_index
from tests.conftest import TRAIN_FLAGS


def test_evaluate_gives_the_numbers_of_encode_and_search_and_writes_run_metrics_embeddings_index(
        tiny_model_dir, tiny_beir, tmp_path):
    out = tmp_path / "eval"
    metrics, = evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir),
                             "--output_dir", str(out), "--name", "tiny"])
    encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir),
                 "--output_file", str(tmp_path / "corpus.npz")])
    encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), "--encode_is_query",
                 "--output_file", str(tmp_path / "queries.npz")])
    separate = search.main(["--query_embeddings", str(tmp_path / "queries.npz"), "--corpus_embeddings",
                            str(tmp_path / "corpus.npz"), "--qrels", str(tiny_beir), "--output_dir",
                            str(tmp_path / "search")])
    for name in ("MRR@10", "nDCG@10", "Recall@100"):
        assert metrics[name] == pytest.approx(separate[name], abs=1e-9), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["system"] == "tiny" and saved["queries"] == 14
    per_query = saved["per_query"]["nDCG@10"]
    assert len(per_query) == 14 and np.mean(list(per_query.values())) == pytest.approx(saved["nDCG@10"])
    assert (out / "run.trec").read_text() == (tmp_path / "search" / "run.trec").read_text().replace(
        " dense\n", " tiny\n")
    with np.load(out / "emb" / "corpus.npz") as ours, np.load(tmp_path / "corpus.npz") as theirs:
        np.testing.assert_allclose(ours["embeddings"], theirs["embeddings"], atol=1e-6)
    index, doc_ids, meta, docs = load_index(out / "index")
    assert index.ntotal == 28 and doc_ids[0] == "d0-0" and meta["kind"] == "passage" and meta["index_type"] == "flat"
    assert docs["d0-0"]["title"] == "apple"


def test_evaluate_takes_an_encoder_with_mean_pooling_and_long_inputs(tiny_arch_dirs, tiny_beir, tmp_path):
    metrics, = evaluate.main(["--model_name_or_path", tiny_arch_dirs["bert"], "--pooling", "mean",
                             "--query_max_len", "64", "--passage_max_len", "64", "--data_dir", str(tiny_beir),
                             "--output_dir", str(tmp_path / "bert"), "--save_index", "False"])
    assert 0 < metrics["nDCG@10"] <= 1 and not (tmp_path / "bert" / "index").exists()
    meta = load_meta(tmp_path / "bert" / "emb" / "queries.npz")
    assert meta["pooling"] == "mean" and meta["query_max_len"] == 64


def test_cached_embeddings_give_the_same_numbers_and_metrics_say_they_were_reused(tiny_model_dir, tiny_beir, tmp_path,
                                                                                   monkeypatch):
    monkeypatch.setenv("RETRIEVER_CACHE", str(tmp_path / "cache"))
    flags = ["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), "--cache_embeddings", "True"]
    first, = evaluate.main(flags + ["--output_dir", str(tmp_path / "first")])
    again, = evaluate.main(flags + ["--output_dir", str(tmp_path / "again")])
    plain, = evaluate.main(flags[:-2] + ["--output_dir", str(tmp_path / "plain")])
    assert first["reused_embeddings"] == [] and again["reused_embeddings"] == ["passage", "query"]
    assert plain["reused_embeddings"] == [] and first["nDCG@10"] == again["nDCG@10"] == plain["nDCG@10"]
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["reused_embeddings"] == ["passage", "query"]


def test_several_sets_load_the_model_once_and_score_each_as_alone(tiny_model_dir, tiny_beir, echo_beir, tmp_path,
                                                                   monkeypatch):
    loads = []
    load_encoder = evaluate.load_encoder
    monkeypatch.setattr(evaluate, "load_encoder", lambda *a: loads.append(a) or load_encoder(*a))
    echo_dev = tmp_path / "echo-dev"  # its queries judged in qrels/dev.tsv only: each set reads its own split
    shutil.copytree(echo_beir, echo_dev)
    (echo_dev / "qrels" / "test.tsv").rename(echo_dev / "qrels" / "dev.tsv")
    both = evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), str(echo_dev),
                          "--split", "test", "dev", "--output_dir", str(tmp_path / "a"), str(tmp_path / "b"),
                          "--save_index", "False"])
    assert len(loads) == 1
    for metrics, data, split, out in zip(both, (tiny_beir, echo_dev), ("test", "dev"), ("a", "b")):
        alone, = evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(data), "--split", split,
                                "--output_dir", str(tmp_path / f"{out}-alone"), "--save_index", "False"])
        assert metrics["queries"] == alone["queries"] and metrics["nDCG@10"] == pytest.approx(alone["nDCG@10"])
        assert (tmp_path / out / "run.trec").read_text() == (tmp_path / f"{out}-alone" / "run.trec").read_text()
        assert json.loads((tmp_path / out / "metrics.json").read_text())["seconds"] >= 0
    assert both[1]["queries"] == 7 and both[1]["MRR@10"] == 1.0  # the echo set: each query is its document


def test_several_sets_fail_on_a_broken_set_before_the_model_loads(tiny_model_dir, tiny_beir, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "corpus.jsonl").write_text('{"_id": "d1", "text": "fine"}\n{"_id": "d2", "txt": "typo"}\n')
    monkeypatch.setattr(evaluate, "load_encoder", lambda *a: pytest.fail("the model was loaded"))
    with pytest.raises(Exception, match="corpus.jsonl:2: missing field .text."):
        evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), str(broken),
                       "--output_dir", str(tmp_path / "a"), str(tmp_path / "b")])
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("flags, message", [
    (["--output_dir", "x"], "--output_dir: 1 given for 2 --data_dir"),
    (["--output_dir", "x", "x"], "--output_dir: the same directory given twice"),
    # reliability round 4, case 1: out and out/ are one directory, and the second set replaced the first's files
    (["--output_dir", "out", "out/"], r"--output_dir: the same directory given twice \(out/, in out out/\)"),
    (["--output_dir", "out", "./out"], "--output_dir: the same directory given twice"),
    (["--output_dir", "x", "y", "--split", "test", "dev", "train"], "--split: 3 given for 2 --data_dir"),
])
def test_several_sets_need_one_output_dir_each_and_one_split_or_one_each(tiny_beir, flags, message):
    with pytest.raises(ValueError, match=message):
        evaluate.main(["--data_dir", str(tiny_beir), str(tiny_beir), *flags])


def test_zero_shot_of_a_model_trained_without_its_last_layers_is_refused(tiny_model_dir, tiny_groups, tiny_beir,
                                                                         tmp_path):
    # its base read whole would not be the model it was trained from: a silently wrong baseline
    model = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir",
                        str(tmp_path / "m"), *TRAIN_FLAGS, "--lora", "True", "--drop_last_layers", "1"])
    with pytest.raises(ValueError, match=r"--zero_shot: .* keeps the first 1 of .*'s 2 layers"):
        evaluate.main(["--model_name_or_path", str(model), "--zero_shot", "--data_dir", str(tiny_beir),
                       "--output_dir", str(tmp_path / "zero")])
    assert not (tmp_path / "zero").exists()


def load_meta(path):
    with np.load(path) as data:
        return json.loads(str(data["meta"]))


def test_zero_shot_reads_the_base_model_with_the_trained_models_text_format(tiny_model_dir, tiny_groups, tiny_beir,
                                                                            tmp_path):
    template = "what is {text} in the sun"
    model = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir",
                        str(tmp_path / "m"), *TRAIN_FLAGS, "--query_template", template, "--append_eos", "False"])
    zero, = evaluate.main(["--model_name_or_path", str(model), "--zero_shot", "--pooling", "mean", "--data_dir",
                          str(tiny_beir), "--output_dir", str(tmp_path / "zero"), "--save_index", "False"])
    base, = evaluate.main(["--model_name_or_path", tiny_model_dir, "--pooling", "mean", "--query_template", template,
                          "--append_eos", "False", "--query_max_len", "8", "--passage_max_len", "12",
                          "--data_dir", str(tiny_beir), "--output_dir", str(tmp_path / "base"), "--save_index", "False"])
    assert zero["nDCG@10"] == pytest.approx(base["nDCG@10"], abs=1e-9)
    meta = load_meta(tmp_path / "zero" / "emb" / "queries.npz")
    assert meta["model"] == tiny_model_dir and meta["pooling"] == "mean" and meta["query_template"] == template
    assert load_meta(tmp_path / "zero" / "emb" / "queries.npz") == load_meta(tmp_path / "base" / "emb" / "queries.npz")
    with pytest.raises(ValueError, match="--zero_shot: .* is not a trained model"):
        evaluate.main(["--model_name_or_path", tiny_model_dir, "--zero_shot", "--data_dir", str(tiny_beir),
                       "--output_dir", str(tmp_path / "x")])

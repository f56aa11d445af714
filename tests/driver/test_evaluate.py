"""driver.evaluate: one process, one model load, the same numbers as encode + search; the saved index
and driver.query over it with free text."""
import json

import numpy as np
import pytest

from retriever.driver import encode, evaluate, search, train
from retriever.searcher import load_index
from tests.conftest import TRAIN_FLAGS


def test_evaluate_gives_the_numbers_of_encode_and_search_and_writes_run_metrics_embeddings_index(
        tiny_model_dir, tiny_beir, tmp_path):
    out = tmp_path / "eval"
    metrics = evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir),
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
    metrics = evaluate.main(["--model_name_or_path", tiny_arch_dirs["bert"], "--pooling", "mean",
                             "--query_max_len", "64", "--passage_max_len", "64", "--data_dir", str(tiny_beir),
                             "--output_dir", str(tmp_path / "bert"), "--save_index", "False"])
    assert 0 < metrics["nDCG@10"] <= 1 and not (tmp_path / "bert" / "index").exists()
    meta = load_meta(tmp_path / "bert" / "emb" / "queries.npz")
    assert meta["pooling"] == "mean" and meta["query_max_len"] == 64


def load_meta(path):
    with np.load(path) as data:
        return json.loads(str(data["meta"]))


def test_zero_shot_reads_the_base_model_with_the_trained_models_text_format(tiny_model_dir, tiny_groups, tiny_beir,
                                                                            tmp_path):
    template = "what is {text} in the sun"
    model = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir",
                        str(tmp_path / "m"), *TRAIN_FLAGS, "--query_template", template, "--append_eos", "False"])
    zero = evaluate.main(["--model_name_or_path", str(model), "--zero_shot", "--pooling", "mean", "--data_dir",
                          str(tiny_beir), "--output_dir", str(tmp_path / "zero"), "--save_index", "False"])
    base = evaluate.main(["--model_name_or_path", tiny_model_dir, "--pooling", "mean", "--query_template", template,
                          "--append_eos", "False", "--query_max_len", "8", "--passage_max_len", "12",
                          "--data_dir", str(tiny_beir), "--output_dir", str(tmp_path / "base"), "--save_index", "False"])
    assert zero["nDCG@10"] == pytest.approx(base["nDCG@10"], abs=1e-9)
    meta = load_meta(tmp_path / "zero" / "emb" / "queries.npz")
    assert meta["model"] == tiny_model_dir and meta["pooling"] == "mean" and meta["query_template"] == template
    assert load_meta(tmp_path / "zero" / "emb" / "queries.npz") == load_meta(tmp_path / "base" / "emb" / "queries.npz")
    with pytest.raises(ValueError, match="--zero_shot: .* is not a trained model"):
        evaluate.main(["--model_name_or_path", tiny_model_dir, "--zero_shot", "--data_dir", str(tiny_beir),
                       "--output_dir", str(tmp_path / "x")])

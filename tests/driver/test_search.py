"""driver.search: embeddings files searched with FAISS, the run evaluated; files that do not belong together refused."""
import json

import numpy as np
import pytest

from retriever.driver import encode, query, run_cli, search
from retriever.io import DataError
from retriever.searcher import load_index


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


def test_search_saves_an_index_of_the_texts_it_is_told_and_names_what_is_missing(tiny_model_dir, echo_beir, tmp_path,
                                                                               capsys):
    for extra in ([], ["--encode_is_query"]):
        encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(echo_beir), *extra,
                     "--output_file", str(tmp_path / ("queries.npz" if extra else "corpus.npz"))])
    flags = ["--query_embeddings", str(tmp_path / "queries.npz"), "--corpus_embeddings", str(tmp_path / "corpus.npz"),
             "--save_index", "True"]
    # qrels given as a TSV file: the corpus texts are not there, and --corpus is asked for
    code = run_cli(lambda: search.main([*flags, "--qrels", str(echo_beir / "qrels" / "test.tsv"),
                                        "--output_dir", str(tmp_path / "tsv")]))
    assert code == 2 and "--save_index needs the corpus texts: give --corpus" in capsys.readouterr().err
    assert not (tmp_path / "tsv" / "index").exists()
    search.main([*flags, "--qrels", str(echo_beir / "qrels" / "test.tsv"), "--corpus", str(echo_beir / "corpus.jsonl"),
                 "--output_dir", str(tmp_path / "s")])
    _, doc_ids, meta, docs = load_index(tmp_path / "s" / "index")
    assert len(doc_ids) == 28 and meta["kind"] == "passage" and docs["d3-0"]["title"]
    question = f"{docs['d3-0']['title']} {docs['d3-0']['text']}"
    assert query.main(["--index_dir", str(tmp_path / "s" / "index"), "--top_k", "1", question])[0]["doc_id"] == "d3-0"

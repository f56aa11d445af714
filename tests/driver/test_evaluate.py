"""driver.evaluate: one process, one model load, the same numbers as encode + search; the saved index
and driver.query over it with free text."""
import io
import json
import shutil

import numpy as np
import pytest

from retriever.driver import encode, evaluate, query, run_cli, search
from retriever.searcher import load_index
from tests.conftest import write_jsonl


@pytest.fixture(scope="module")
def echo_beir(tmp_path_factory, tiny_beir):
    """tiny_beir's corpus; each test query is one document's exact title + text, judged relevant to it,
    so that any model ranks that document first."""
    root = tmp_path_factory.mktemp("echo")
    docs = [json.loads(line) for line in (tiny_beir / "corpus.jsonl").read_text().splitlines()]
    shutil.copy(tiny_beir / "corpus.jsonl", root / "corpus.jsonl")
    chosen = docs[::4]  # one document a topic
    write_jsonl(root / "queries.jsonl", [{"_id": f"q-{d['_id']}", "text": f"{d['title']} {d['text']}"}
                                         for d in chosen])
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"q-{d['_id']}\t{d['_id']}\t1\n" for d in chosen))
    return root


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


@pytest.mark.parametrize("index_type", ["flat", "ivf", "hnsw"])
def test_a_saved_index_answers_free_text_with_the_judged_document_first(tiny_model_dir, echo_beir, tmp_path,
                                                                        index_type, capsys):
    out = tmp_path / index_type
    metrics = evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(echo_beir),
                             "--output_dir", str(out), "--index_type", index_type])
    assert metrics["MRR@10"] == 1.0
    corpus = {d["_id"]: d for d in map(json.loads, (echo_beir / "corpus.jsonl").read_text().splitlines())}
    question = f"{corpus['d3-0']['title']} {corpus['d3-0']['text']}"
    capsys.readouterr()
    results = query.main(["--index_dir", str(out / "index"), "--top_k", "3", question])
    assert [r["rank"] for r in results] == [1, 2, 3]
    assert results[0]["doc_id"] == "d3-0" and results[0]["text"] == corpus["d3-0"]["text"]
    printed = capsys.readouterr().out
    assert "  1  d3-0  " in printed and question in printed


def test_query_reads_stdin_and_writes_jsonl(tiny_model_dir, echo_beir, tmp_path, monkeypatch):
    evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(echo_beir), "--output_dir",
                   str(tmp_path / "e")])
    monkeypatch.setattr("sys.stdin", io.StringIO("apple banana\n\nriver sun tree\n"))
    results = query.main(["--index_dir", str(tmp_path / "e" / "index"), "--top_k", "2", "--output_file",
                          str(tmp_path / "hits.jsonl")])
    lines = [json.loads(line) for line in (tmp_path / "hits.jsonl").read_text().splitlines()]
    assert lines == results and [r["query"] for r in lines] == ["apple banana"] * 2 + ["river sun tree"] * 2
    assert set(lines[0]) == {"query", "rank", "doc_id", "score", "title", "text"}


def test_query_refuses_a_model_that_did_not_make_the_index(tiny_model_dir, tiny_arch_dirs, echo_beir, tmp_path,
                                                           capsys):
    evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(echo_beir), "--output_dir",
                   str(tmp_path / "e")])
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    from safetensors.torch import load_file, save_file

    weights = load_file(other / "model.safetensors")
    save_file({k: v + 0.01 for k, v in weights.items()}, other / "model.safetensors")  # same shapes, new weights
    code = run_cli(lambda: query.main(["--index_dir", str(tmp_path / "e" / "index"), "--model_name_or_path",
                                       str(other), "apple"]))
    assert code == 2 and "differ in 'weights'" in capsys.readouterr().err
    code = run_cli(lambda: query.main(["--index_dir", str(tmp_path / "e" / "index"), "--model_name_or_path",
                                       tiny_arch_dirs["pythia"], "apple"]))
    assert code == 2 and "differ in 'dim'" in capsys.readouterr().err


def test_query_on_a_directory_that_is_not_an_index_says_how_to_make_one(tmp_path, capsys):
    assert run_cli(lambda: query.main(["--index_dir", str(tmp_path), "apple"])) == 2
    err = capsys.readouterr().err
    assert "not a saved index (no index.faiss" in err and "driver.evaluate" in err


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


def test_query_encodes_free_text_with_the_index_own_template_not_the_models_default(tiny_model_dir, echo_beir,
                                                                                    tmp_path):
    out = tmp_path / "e"
    evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(echo_beir), "--output_dir", str(out),
                   "--query_template", "what is {text}", "--query_max_len", "24", "--append_eos", "False"])
    with np.load(out / "emb" / "queries.npz") as q, np.load(out / "emb" / "corpus.npz") as p:
        ids, q_emb, p_emb = q["ids"].tolist(), q["embeddings"], p["embeddings"]
    queries = {r["_id"]: r["text"] for r in map(json.loads, (echo_beir / "queries.jsonl").read_text().splitlines())}
    row = ids.index("q-d3-0")
    expected = float((q_emb[row] @ p_emb.T).max())  # the evaluate run's own query vector, scored over the corpus
    top = query.main(["--index_dir", str(out / "index"), "--top_k", "1", queries["q-d3-0"]])[0]
    assert top["score"] == pytest.approx(expected, abs=1e-5)


def test_a_damaged_saved_index_is_named_with_its_file_and_line(tiny_model_dir, echo_beir, tmp_path, capsys):
    evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(echo_beir), "--output_dir",
                   str(tmp_path / "e")])
    docs = tmp_path / "e" / "index" / "docs.jsonl"
    lines = docs.read_text().splitlines()
    docs.write_text("\n".join([lines[0], '{"title": "x", "text": "y"}', *lines[2:]]) + "\n")
    assert run_cli(lambda: query.main(["--index_dir", str(tmp_path / "e" / "index"), "apple"])) == 2
    assert f"{docs}:2: missing field '_id'" in capsys.readouterr().err
    docs.write_text("\n".join(lines[:-1]) + "\n")  # a document short of the index's vectors
    assert run_cli(lambda: query.main(["--index_dir", str(tmp_path / "e" / "index"), "apple"])) == 2
    assert "the index holds 28 vectors, docs.jsonl 27 documents" in capsys.readouterr().err

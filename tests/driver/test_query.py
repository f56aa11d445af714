"""driver.query: free text against a saved index, encoded as the index's passages were."""
import io
import json
import shutil

import numpy as np
import pytest

from retriever.driver import evaluate, query, run_cli


@pytest.mark.parametrize("index_type", ["flat", "ivf", "hnsw"])
def test_a_saved_index_answers_free_text_with_the_judged_document_first(tiny_model_dir, echo_beir, tmp_path,
                                                                        index_type, capsys):
    out = tmp_path / index_type
    metrics, = evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(echo_beir),
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


@pytest.mark.parametrize("questions", [[""], ["apple banana", "   "]])
def test_an_empty_question_on_the_command_line_is_refused_not_answered(tiny_model_dir, echo_beir, tmp_path, capsys,
                                                                       questions):
    # reliability round 4, case 2: query '' returned 10 results for the template alone
    evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(echo_beir), "--output_dir",
                   str(tmp_path / "e")])
    capsys.readouterr()
    assert run_cli(lambda: query.main(["--index_dir", str(tmp_path / "e" / "index"), *questions])) == 2
    captured = capsys.readouterr()
    assert f"error: query {len(questions)} of {len(questions)} given after the flags is empty" in captured.err
    assert "  1  d" not in captured.out


def test_an_ivfpq_index_keeps_its_parameters_and_is_searched_with_them(tiny_model_dir, echo_beir, tmp_path):
    out = tmp_path / "pq"
    metrics, = evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(echo_beir), "--output_dir",
                             str(out), "--index_type", "ivfpq", "--pq_m", "8", "--pq_nbits", "4", "--nprobe", "1"])
    meta = json.loads((out / "index" / "index_meta.json").read_text())
    assert (meta["index_type"], meta["pq_m"], meta["pq_nbits"], meta["n_lists"], meta["nprobe"]) == ("ivfpq", 8, 4, 1, 1)
    results = query.main(["--index_dir", str(out / "index"), "--top_k", "5", "apple banana"])
    assert [r["rank"] for r in results] == [1, 2, 3, 4, 5] and metrics["queries"] == 7

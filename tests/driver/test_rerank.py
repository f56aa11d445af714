"""driver.rerank: a run re-scored at its top, teacher scores written into training groups."""
import json

import pytest

from retriever.data import load_queries
from retriever.driver import rerank
from retriever.metrics import read_trec_run, write_trec_run


def test_rerank_rescoring_top_k_keeps_the_tail_in_order_and_evaluates(reranker_dir, tiny_beir, tmp_path):
    docs = [json.loads(line)["_id"] for line in (tiny_beir / "corpus.jsonl").read_text().splitlines()]
    queries = list(load_queries(str(tiny_beir)))
    run = {q: {d: float(-i) for i, d in enumerate(docs)} for q in queries}  # same order for all
    write_trec_run(tmp_path / "in.trec", run)
    metrics = rerank.main(["--model_name_or_path", str(reranker_dir), "--run_file", str(tmp_path / "in.trec"),
                           "--data_dir", str(tiny_beir), "--rerank_depth", "5", "--output_dir", str(tmp_path / "out")])
    assert 0 <= metrics["nDCG@10"] <= 1 and metrics["rerank_depth"] == 5
    out = read_trec_run(tmp_path / "out" / "run.trec")
    for q in queries:
        ranked = sorted(out[q], key=lambda d: -out[q][d])
        assert set(ranked[:5]) == set(docs[:5])  # the top 5, re-ordered among themselves
        assert ranked[5:] == docs[5:]  # everything below keeps its place
    assert len({tuple(sorted(out[q], key=lambda d: -out[q][d])[:5]) for q in queries}) > 1  # query-dependent


def test_teacher_scores_are_added_to_every_passage(reranker_dir, tiny_groups, tmp_path):
    out = tmp_path / "scored.jsonl"
    rerank.main(["--model_name_or_path", str(reranker_dir), "--train_groups", str(tiny_groups),
                 "--output_groups", str(out)])
    groups = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(groups) == 16
    passages = [p for g in groups for p in g["positive_passages"] + g["negative_passages"]]
    assert all(isinstance(p["score"], float) for p in passages) and len({p["score"] for p in passages}) > 1


def test_rerank_needs_exactly_one_input(reranker_dir):
    with pytest.raises(ValueError, match="either --run_file"):
        rerank.main(["--model_name_or_path", str(reranker_dir)])

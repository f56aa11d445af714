"""Re-ranking a run: the top `depth` re-scored, the rest kept below them in their order; teacher scores."""
import json

from retriever.reranking import rerank_run, score_groups


def length_scorer(queries, passages, desc=""):
    """A stand-in for a trained re-ranker: longer passages score higher."""
    return [float(len(p["text"])) for p in passages]


def test_rerank_run_reorders_the_top_by_the_scorer_and_keeps_the_tail_below_in_order():
    docs = {d: {"text": "x" * n} for d, n in (("a", 1), ("b", 5), ("c", 3), ("d", 9), ("e", 2))}
    run = {"q": {"a": 5.0, "b": 4.0, "c": 3.0, "d": 2.0, "e": 1.0}}
    out = rerank_run(length_scorer, run, {"q": "question"}, docs, depth=3)["q"]
    assert sorted(out, key=lambda d: -out[d]) == ["b", "c", "a", "d", "e"]


def test_teacher_scores_go_on_every_passage_of_every_group(tiny_groups, tmp_path):
    score_groups(length_scorer, str(tiny_groups), str(tmp_path / "scored.jsonl"))
    groups = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert len(groups) == 16
    assert all(p["score"] == len(p["text"]) for g in groups for p in g["positive_passages"] + g["negative_passages"])

import math

import pytest

from retriever.metrics import evaluate, read_trec_run, write_trec_run

QRELS = {"q1": {"d1": 1, "d2": 1}, "q2": {"d3": 1}, "q3": {"d9": 0}}  # q3 has no relevant doc
RUN = {"q1": {"d1": 0.9, "x": 0.5, "d2": 0.1}, "q2": {"y": 0.8, "d3": 0.7}, "q3": {"d9": 1.0}}


def test_metrics_on_hand_built_run():
    m = evaluate(QRELS, RUN)
    # q1: first relevant at rank 1 -> RR 1; q2: rank 2 -> 0.5. q3 is not scored.
    assert m["MRR@10"] == pytest.approx((1 + 0.5) / 2)
    dcg_q1 = 1 + 1 / math.log2(4)
    idcg_q1 = 1 + 1 / math.log2(3)
    dcg_q2 = 1 / math.log2(3)
    assert m["nDCG@10"] == pytest.approx((dcg_q1 / idcg_q1 + dcg_q2 / 1) / 2)
    assert m["Recall@100"] == pytest.approx(1.0)


def test_judged_query_missing_from_run_counts_as_zero():
    m = evaluate(QRELS, {"q1": RUN["q1"]})
    assert m["MRR@10"] == pytest.approx(0.5) and m["Recall@100"] == pytest.approx(0.5)


def test_trec_run_round_trip_keeps_ranking(tmp_path):
    write_trec_run(tmp_path / "run.trec", RUN)
    lines = (tmp_path / "run.trec").read_text().splitlines()
    assert lines[0].split() == ["q1", "Q0", "d1", "1", "0.900000", "retriever"]
    back = read_trec_run(tmp_path / "run.trec")
    assert back.keys() == RUN.keys()
    for query_id, docs in RUN.items():
        assert back[query_id] == pytest.approx(docs)


def test_qrels_with_no_relevant_document_at_all_is_an_error():
    from retriever.io import DataError

    with pytest.raises(DataError, match="no relevant document"):
        evaluate({"q1": {"d1": 0}}, {"q1": {"d1": 1.0}})


def test_run_tag_with_spaces_still_reads_back(tmp_path):
    write_trec_run(tmp_path / "run.trec", RUN, tag="fine-tuned (mean)")
    assert read_trec_run(tmp_path / "run.trec") == {q: {d: pytest.approx(s) for d, s in docs.items()}
                                                     for q, docs in RUN.items()}
    assert all(len(line.split()) == 6 for line in (tmp_path / "run.trec").read_text().splitlines())

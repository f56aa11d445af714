"""driver.subset: a smaller BEIR directory that keeps what the evaluation needs."""
import json

from retriever.data import load_corpus, load_qrels
from retriever.driver import subset


def make_beir(root, n_docs=40, judged_per_query=6, n_queries=5):
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": f"d{i}", "title": "", "text": f"doc {i}"}) + "\n" for i in range(n_docs)))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n" for i in range(n_queries)))
    rows = [f"q{q}\td{q * judged_per_query + k}\t{1 + k % 2}" for q in range(n_queries) for k in range(judged_per_query)]
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return root


def run(src, out, *extra):
    subset.main(["--data_dir", str(src), "--output_dir", str(out), *extra])
    return {d["id"] for d in load_corpus(str(out))}, load_qrels(str(out), "test")


def test_subset_keeps_every_judged_doc_and_fills_with_distractors(tmp_path):
    src = make_beir(tmp_path / "src")
    docs, qrels = run(src, tmp_path / "out", "--n_docs", "35")
    assert len(docs) == 35 and {f"d{i}" for i in range(30)} <= docs
    assert qrels == load_qrels(str(src), "test")


def test_subset_samples_queries_and_keeps_only_their_judgements(tmp_path):
    docs, qrels = run(make_beir(tmp_path / "src"), tmp_path / "out", "--n_docs", "20", "--n_queries", "2")
    assert len(qrels) == 2 and all(len(rels) == 6 for rels in qrels.values())
    judged = {d for rels in qrels.values() for d in rels}
    assert judged <= docs and len(docs) == 20


def test_subset_smaller_than_the_judged_docs_restricts_qrels_to_kept_docs(tmp_path):
    docs, qrels = run(make_beir(tmp_path / "src"), tmp_path / "out", "--n_docs", "10")
    assert len(docs) == 10
    assert all(d in docs for rels in qrels.values() for d in rels)  # no judgement of a dropped doc
    assert all(rels for rels in qrels.values())  # no query left without a relevant doc


def test_same_seed_same_subset_other_seed_other_subset(tmp_path):
    src = make_beir(tmp_path / "src")
    a = run(src, tmp_path / "a", "--n_docs", "35")[0]
    assert a == run(src, tmp_path / "b", "--n_docs", "35")[0]
    assert a != run(src, tmp_path / "c", "--n_docs", "35", "--seed", "7")[0]

"""Hard-negative mining: BM25 (round 1) or a trained encoder (round 2)."""
import json

from retriever.data import load_qrels
from retriever.driver import mine


def mined(tiny_beir, out, *extra):
    mine.main(["--data_dir", str(tiny_beir), "--split", "test", "--output_file", str(out), *extra])
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_bm25_mining_writes_one_group_per_judged_query_without_positives_among_negatives(tiny_beir, tmp_path):
    qrels = load_qrels(str(tiny_beir), "test")
    groups = mined(tiny_beir, tmp_path / "g.jsonl", "--n_negatives", "4", "--skip_top", "0")
    assert sorted(g["query_id"] for g in groups) == sorted(qrels)
    for g in groups:
        positives = {p["docid"] for p in g["positive_passages"]}
        assert positives == set(qrels[g["query_id"]])
        assert len(g["negative_passages"]) == 4
        assert not positives & {p["docid"] for p in g["negative_passages"]}


def test_too_few_bm25_matches_are_filled_with_the_same_random_documents_after_the_matches(tiny_beir, tmp_path):
    # topics share no words, so BM25 matches at most a query's 3 other topic documents; the rest is random
    groups = mined(tiny_beir, tmp_path / "a.jsonl", "--n_negatives", "10", "--skip_top", "0")
    again = mined(tiny_beir, tmp_path / "b.jsonl", "--n_negatives", "10", "--skip_top", "0")
    assert groups == again
    for g in groups:
        topic = g["query_id"].split("-")[0].replace("q", "d") + "-"
        ids = [p["docid"] for p in g["negative_passages"]]
        assert len(ids) == len(set(ids)) == 10 and g["query_id"].replace("q", "d") not in ids
        n_topic = sum(d.startswith(topic) for d in ids)
        assert 1 <= n_topic <= 3 and all(d.startswith(topic) for d in ids[:n_topic])  # the matches come first


def test_skip_top_drops_the_first_ranked_non_positives(tiny_beir, tmp_path):
    full = mined(tiny_beir, tmp_path / "a.jsonl", "--n_negatives", "6", "--skip_top", "0")
    skipped = mined(tiny_beir, tmp_path / "b.jsonl", "--n_negatives", "4", "--skip_top", "2")
    for a, b in zip(full, skipped):
        assert [p["docid"] for p in b["negative_passages"]] == [p["docid"] for p in a["negative_passages"][2:6]]


def test_mining_with_a_trained_encoder_ranks_by_that_encoder(tiny_model_dir, tiny_beir, tmp_path):
    from retriever.encoding import encode_texts, load_encoder
    from retriever.text import format_text
    import numpy as np

    groups = mined(tiny_beir, tmp_path / "d.jsonl", "--encoder", tiny_model_dir, "--n_negatives", "3",
                   "--skip_top", "0")
    # the negatives are the encoder's nearest non-positive documents, in its order
    model, tokenizer = load_encoder(tiny_model_dir)
    docs = [json.loads(line) for line in (tiny_beir / "corpus.jsonl").read_text().splitlines()]
    d_emb = encode_texts(model, tokenizer, [format_text(d["text"], title=d["title"]) for d in docs], 128, 8)["last"]
    for g in groups[:3]:
        q_emb = encode_texts(model, tokenizer, [g["query"]], 128, 8)["last"][0]
        order = [docs[i]["_id"] for i in np.argsort(-(d_emb @ q_emb))]
        positives = {p["docid"] for p in g["positive_passages"]}
        assert [p["docid"] for p in g["negative_passages"]] == [d for d in order if d not in positives][:3]


def test_a_ranking_cut_short_by_depth_is_not_filled_with_random_documents(tiny_model_dir, tiny_beir, tmp_path):
    # only a ranking that runs out of documents (BM25's matches) is filled; --depth is the user's own cut
    groups = mined(tiny_beir, tmp_path / "d.jsonl", "--encoder", tiny_model_dir, "--depth", "3", "--n_negatives", "5",
                   "--skip_top", "0")
    assert all(len(g["negative_passages"]) <= 3 for g in groups)


def test_a_teacher_scores_every_passage_and_drops_negatives_nearly_as_good_as_the_positive(tiny_model_dir, tiny_beir,
                                                                                          tmp_path, caplog):
    from retriever.encoding import encode_texts, load_encoder
    from retriever.text import format_text
    import numpy as np

    caplog.set_level("INFO")
    groups = mined(tiny_beir, tmp_path / "t.jsonl", "--encoder", tiny_model_dir, "--n_negatives", "30",
                   "--skip_top", "0", "--teacher_scores", "True")  # every candidate: 28 documents
    model, tokenizer = load_encoder(tiny_model_dir)
    docs = {json.loads(line)["_id"]: json.loads(line) for line in (tiny_beir / "corpus.jsonl").read_text().splitlines()}
    for g in groups[:3]:  # each passage's "score" is the teacher's q . p / temperature
        q_emb = encode_texts(model, tokenizer, [g["query"]], 128, 8)["last"][0]
        for p in g["positive_passages"] + g["negative_passages"]:
            d = docs[p["docid"]]
            p_emb = encode_texts(model, tokenizer, [format_text(d["text"], title=d["title"])], 128, 8)["last"][0]
            assert abs(p["score"] - float(p_emb @ q_emb) / model.temperature) < 1e-3
    filtered = mined(tiny_beir, tmp_path / "f.jsonl", "--encoder", tiny_model_dir, "--n_negatives", "30",
                     "--skip_top", "0", "--teacher_scores", "True", "--false_negative_ratio", "0.9")
    kept = dropped = 0
    for before, after in zip(groups, filtered):
        best = max(p["score"] for p in before["positive_passages"])
        expected = [p["docid"] for p in before["negative_passages"] if p["score"] <= 0.9 * best]
        assert [p["docid"] for p in after["negative_passages"]] == expected
        kept, dropped = kept + len(expected), dropped + len(before["negative_passages"]) - len(expected)
    assert kept and dropped  # the tiny random model's scores lie on both sides of the line
    assert f"dropped {dropped} candidate negatives scoring above 0.90" in caplog.text


def test_teacher_flags_need_a_teacher(tiny_beir, tmp_path):
    import pytest

    with pytest.raises(ValueError, match="--teacher_scores score passages with a teacher: give it as --encoder"):
        mined(tiny_beir, tmp_path / "x.jsonl", "--teacher_scores", "True")

import json
import logging

import pytest

from retriever.data import TrainDataset, load_corpus, load_qrels, load_queries, load_train_groups
from retriever.driver import train
from retriever.io import DataError
from tests.conftest import write_jsonl

GROUP = {"query_id": "1", "query": "apple",
         "positive_passages": [{"docid": "a", "title": "", "text": "apple tree"}],
         "negative_passages": [{"docid": f"n{k}", "title": "", "text": f"sun {k}"} for k in range(4)]}


def test_jsonl_groups_load(tiny_groups):
    groups = load_train_groups(str(tiny_groups))
    assert len(groups) == 16 and groups[0]["positive_passages"][0]["text"]


def test_saved_datasets_dataset_loads_like_jsonl(tiny_groups, tmp_path):
    import datasets

    rows = [json.loads(line) for line in tiny_groups.read_text().splitlines()]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    groups = load_train_groups(str(tmp_path / "ds"))
    assert [g["query"] for g in groups] == [r["query"] for r in rows]


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GROUP) + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: bad JSON"):
        load_train_groups(str(path))


def test_missing_query_names_line_and_field(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [GROUP, {k: v for k, v in GROUP.items() if k != "query"}])
    with pytest.raises(DataError, match=r"g.jsonl:2: missing field 'query'"):
        load_train_groups(str(path))


def test_empty_passage_text_names_the_passage(tmp_path):
    bad = {**GROUP, "negative_passages": [{"docid": "x", "text": "  "}]}
    path = write_jsonl(tmp_path / "g.jsonl", [bad])
    with pytest.raises(DataError, match=r"g.jsonl:1: negative_passages\[0\]: field 'text' is empty"):
        load_train_groups(str(path))


def test_groups_without_positive_are_skipped_with_a_count(tmp_path, caplog):
    path = write_jsonl(tmp_path / "g.jsonl", [GROUP, {**GROUP, "positive_passages": []}])
    with caplog.at_level(logging.WARNING):
        assert len(load_train_groups(str(path))) == 1
    assert "skipped 1 groups" in caplog.text


def test_group_has_positive_first_and_group_size_passages():
    item = TrainDataset([GROUP], group_size=3, seed=0)[0]
    assert item["passages"][0]["docid"] == "a"
    assert len(item["passages"]) == 3 and all(p["docid"].startswith("n") for p in item["passages"][1:])


def test_sampling_is_fixed_by_seed_and_index():
    a, b = TrainDataset([GROUP] * 3, 3, seed=7), TrainDataset([GROUP] * 3, 3, seed=7)
    assert [a[i] for i in (2, 0, 1)] == [b[i] for i in (2, 0, 1)]
    assert any(TrainDataset([GROUP], 3, seed=s)[0] != a[0] for s in range(8))


def test_too_few_negatives_sample_with_replacement_and_warn(caplog):
    with caplog.at_level(logging.WARNING):
        ds = TrainDataset([GROUP], group_size=10, seed=0)
    assert "sampling those with replacement" in caplog.text
    assert len(ds[0]["passages"]) == 10


def test_beir_loaders_read_corpus_queries_qrels(tiny_beir):
    docs = load_corpus(str(tiny_beir))
    assert len(docs) == 28 and docs[0] == {"id": "d0-0", "title": "apple", "text": docs[0]["text"]}
    assert load_queries(str(tiny_beir))["q0-0"].startswith("what is")
    qrels = load_qrels(str(tiny_beir), "test")
    assert len(qrels) == 14 and qrels["q3-1"] == {"d3-1": 1}


def test_duplicate_corpus_id_names_both_lines(tmp_path):
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "1", "text": "a"}, {"_id": "2", "text": "b"},
                                            {"_id": "1", "text": "c"}])
    with pytest.raises(DataError, match=r"corpus.jsonl:3: duplicate _id '1' \(first on line 1\)"):
        load_corpus(str(tmp_path))


def test_missing_beir_file_says_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="Get the BEIR"):
        load_corpus(str(tmp_path / "fiqa"))


def test_missing_positive_passages_names_line_and_field(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [{"query": "apple", "negative_passages": []}])
    with pytest.raises(DataError, match=r"g.jsonl:1: missing field 'positive_passages'"):
        load_train_groups(str(path))


def test_corpus_record_without_id_names_line_and_field(tmp_path):
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "1", "text": "a"}, {"title": "t", "text": "b"}])
    with pytest.raises(DataError, match=r"corpus.jsonl:2: missing field '_id'"):
        load_corpus(str(tmp_path))


def test_query_without_text_names_line_and_field(tmp_path):
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1"}])
    with pytest.raises(DataError, match=r"queries.jsonl:1: missing field 'text'"):
        load_queries(str(tmp_path))


def test_group_size_larger_than_negatives_with_none_at_all_is_a_clear_error():
    with pytest.raises(DataError, match="has no negative passages; use --train_group_size 1"):
        TrainDataset([{**GROUP, "negative_passages": []}], group_size=4)[0]


def write_qrels(tmp_path, text):
    (tmp_path / "qrels").mkdir(exist_ok=True)
    (tmp_path / "qrels" / "test.tsv").write_text(text)
    return str(tmp_path)


def test_qrels_with_a_fourth_column_after_a_beir_header_is_an_error_not_a_trec_file(tmp_path):
    data = write_qrels(tmp_path, "query-id\tcorpus-id\tscore\nq1\td1\t1\t1\n")
    with pytest.raises(DataError, match=r"test.tsv:2: 4 fields where the file's BEIR .* rows have 3"):
        load_qrels(data)


def test_headerless_four_column_qrels_must_have_a_trec_iteration(tmp_path):
    with pytest.raises(DataError, match=r"test.tsv:1: 4 fields, but field 2 is 'd1', not a TREC iteration"):
        load_qrels(write_qrels(tmp_path, "q1\td1\t1\t1\n"))


def test_trec_qrels_and_mixed_files(tmp_path):
    assert load_qrels(write_qrels(tmp_path, "q1 0 d1 1\nq1 0 d2 0\nq2 Q0 d3 2\n")) == \
        {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}
    with pytest.raises(DataError, match=r"test.tsv:2: 3 fields where the file's TREC"):
        load_qrels(write_qrels(tmp_path, "q1\t0\td1\t1\nq2\td2\t1\n"))


def test_each_epoch_draws_its_own_negatives_and_an_epoch_repeats_exactly():
    group = {**GROUP, "negative_passages": [{"docid": f"n{k}", "text": f"sun {k}"} for k in range(30)]}
    ds = TrainDataset([group] * 4, group_size=4, seed=7)
    epoch0 = [ds[i]["passages"] for i in range(4)]
    ds.set_epoch(1)
    epoch1 = [ds[i]["passages"] for i in range(4)]
    assert epoch1 != epoch0
    assert [TrainDataset([group] * 4, 4, seed=7, epoch=1)[i]["passages"] for i in range(4)] == epoch1


def test_duplicate_query_id_names_both_lines_instead_of_keeping_the_later_text(tmp_path):
    # reliability round 3, case 8
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "first"}, {"_id": "q2", "text": "b"},
                                             {"_id": "q1", "text": "second"}])
    with pytest.raises(DataError, match=r"queries.jsonl:3: duplicate _id 'q1' \(first on line 1\)"):
        load_queries(str(tmp_path))


def test_qrels_naming_absent_queries_and_docs_are_counted_in_warnings(caplog):
    import logging

    from retriever.metrics import check_qrels_ids

    qrels = {"q1": {"d1": 1, "gone": 1}, "q2": {"d2": 1}}
    with caplog.at_level(logging.WARNING):
        check_qrels_ids(qrels, run={"q1": {"d1": 1.0}}, doc_ids=["d1", "d2"])
    assert "1 qrels queries have no results" in caplog.text
    assert "1 relevant qrels documents are not in the corpus (e.g. gone)" in caplog.text


def test_invalid_utf8_names_file_and_line(tmp_path):
    from retriever.data import load_train_groups
    from retriever.io import DataError

    bad = tmp_path / "g.jsonl"
    bad.write_bytes(b'{"query": "a", "positive_passages": [{"text": "b"}]}\n{"query": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"g.jsonl:2: not valid UTF-8 \(byte 0xe9 at column 15\)"):
        load_train_groups(str(bad))


def test_group_without_negatives_is_reported_with_its_line_before_a_model_is_loaded(tiny_groups, tmp_path):
    from retriever.io import DataError

    rows = tiny_groups.read_text().splitlines()
    rows[2] = json.dumps({**json.loads(rows[2]), "negative_passages": []})
    (tmp_path / "g.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"g.jsonl:3: group has no negative passages"):
        train.main(["--model_name_or_path", str(tmp_path / "no-model-needed-yet"), "--train_data",
                    str(tmp_path / "g.jsonl"), "--output_dir", str(tmp_path / "out"), "--train_group_size", "3"])


def test_empty_corpus_is_named(tmp_path):
    from retriever.driver import bm25
    from retriever.io import DataError

    (tmp_path / "corpus.jsonl").write_text("\n")
    with pytest.raises(DataError, match="corpus.jsonl: holds no documents"):
        bm25.main(["--data_dir", str(tmp_path)])


def test_missing_beir_file_hint_names_a_real_set_or_none(tmp_path):
    from retriever.data import load_corpus

    with pytest.raises(FileNotFoundError) as e:
        load_corpus(str(tmp_path / "my-data"))
    assert "beir.zip" not in str(e.value) and "my-data.zip" not in str(e.value) and "Point DATA_DIR" in str(e.value)
    with pytest.raises(FileNotFoundError, match=r"scifact\.zip"):
        load_corpus(str(tmp_path / "scifact"))

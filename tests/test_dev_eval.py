"""The dev set watched while training: what it loads, and data that would make its numbers meaningless."""
import shutil

import pytest

from retriever.dev_eval import DevSet


def test_dev_set_loads_the_judged_queries_and_the_corpus(tiny_beir):
    dev = DevSet.load(str(tiny_beir), "test")
    assert len(dev.query_ids) == 14 and len(dev.doc_ids) == 28 and dev.docs[0].startswith("apple ")


# Reliability round 3, case 5: a dev set whose judged documents are not in its corpus logs 0.0 forever.
def test_a_dev_set_whose_judged_documents_are_all_missing_from_its_corpus_is_refused(tiny_beir, tmp_path):
    shutil.copytree(tiny_beir, tmp_path / "dev")
    rows = (tmp_path / "dev" / "qrels" / "test.tsv").read_text().splitlines()
    (tmp_path / "dev" / "qrels" / "test.tsv").write_text(
        "\n".join([rows[0]] + [row.replace("\td", "\tgone-d") for row in rows[1:]]) + "\n")
    with pytest.raises(ValueError, match=r"--eval_data_dir .*: none of the 14 documents that qrels/test.tsv judges "
                                         r"relevant is in its corpus.jsonl"):
        DevSet.load(str(tmp_path / "dev"), "test")


def test_a_dev_set_missing_some_judged_documents_warns_with_the_count(tiny_beir, tmp_path, caplog):
    shutil.copytree(tiny_beir, tmp_path / "dev")
    rows = (tmp_path / "dev" / "qrels" / "test.tsv").read_text().splitlines()
    rows[1] = rows[1].replace("\td", "\tgone-d")
    (tmp_path / "dev" / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    with caplog.at_level("WARNING", logger="retriever.dev_eval"):
        DevSet.load(str(tmp_path / "dev"), "test")
    assert "1 of 14 relevant documents of qrels/test.tsv are not in its corpus" in caplog.text

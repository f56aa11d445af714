"""BM25 (bm25s): the best-matching document first, at most the corpus size, the same ranking on every machine."""
import numpy as np

from retriever.bm25 import BM25Index, top_rows


def test_bm25_ranks_the_document_sharing_the_query_words_first_and_never_past_the_corpus():
    index = BM25Index(["apples and pears", "a river runs through the valley", "the red apple fell"])
    ranking = index.search(["red apple", "river valley"], k=10)
    assert ranking.rows.shape == (2, 3) and ranking.rows[:, 0].tolist() == [2, 1]
    assert (ranking.scores[:, :-1] >= ranking.scores[:, 1:]).all()  # best first


def test_bm25_leaves_out_documents_sharing_no_word_with_the_query():
    index = BM25Index(["apples and pears", "a river runs through the valley", "the red apple fell", "stone walls"])
    ranking = index.search(["red apple", "the and of"], k=4)  # the second: stopwords only
    assert ranking.rows.tolist() == [[2, 0, -1, -1], [-1, -1, -1, -1]]
    assert ranking.scores[0, 1] > 0 and (ranking.scores[0, 2:] == 0).all()


def test_bm25_ranks_equal_scores_in_corpus_order_on_every_machine():
    # eight copies of one text score the same: the order may not depend on the sort bm25s or numpy picks
    texts = ["river valley"] * 8 + ["river"] + ["the red apple fell"] * 3
    ranking = BM25Index(texts).search(["river valley"], k=6)
    assert ranking.rows[0].tolist() == [0, 1, 2, 3, 4, 5]
    assert BM25Index(texts).search(["river"], k=9).rows[0].tolist() == [8, 0, 1, 2, 3, 4, 5, 6, 7]  # shortest first


def test_top_rows_takes_the_k_best_positive_scores_ties_in_row_order():
    scores = np.array([0.5, 2.0, 0.0, 0.5, 2.0, 1.0, 0.5], dtype=np.float32)
    assert top_rows(scores, 4).tolist() == [1, 4, 5, 0]
    assert top_rows(scores, 10).tolist() == [1, 4, 5, 0, 3, 6]
    assert top_rows(np.zeros(3, dtype=np.float32), 2).tolist() == []

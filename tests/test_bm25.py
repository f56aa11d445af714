"""BM25 (bm25s): the best-matching document first, at most the corpus size."""
from retriever.bm25 import BM25Index


def test_bm25_ranks_the_document_sharing_the_query_words_first_and_never_past_the_corpus():
    index = BM25Index(["apples and pears", "a river runs through the valley", "the red apple fell"])
    ranking = index.search(["red apple", "river valley"], k=10)
    assert ranking.rows.shape == (2, 3) and ranking.rows[:, 0].tolist() == [2, 1]
    assert (ranking.scores[:, :-1] >= ranking.scores[:, 1:]).all()  # best first

"""Ranking: BM25 and FAISS search return the same (scores, rows) layout."""
import numpy as np

from retriever.bm25 import BM25Index
from retriever.ranking import Ranking
from retriever.searcher import build_index, search


def test_bm25_and_faiss_both_return_scores_then_rows_best_first():
    docs = np.eye(3, dtype=np.float32)
    dense = search(build_index(docs), np.array([[0.1, 0.9, 0.0]], dtype=np.float32), depth=3)
    lexical = BM25Index(["sun sun", "moon", "star"]).search(["moon"], k=3)
    for ranking in (dense, lexical):
        assert isinstance(ranking, Ranking)
        scores, rows = ranking  # the one order every caller unpacks
        assert rows[0, 0] == 1 and scores[0, 0] == ranking.scores.max()

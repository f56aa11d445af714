"""BM25 (via `bm25s`): the lexical baseline and the hard-negative miner."""
import numpy as np

from retriever.ranking import Ranking


def _tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s
    import Stemmer  # PyStemmer: English stemming makes BM25 a fair baseline

    return bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=False,
                          show_progress=False)


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """The rows of the k best scores, best first, among the rows scoring above 0 (a document that
    shares no term with the query is not retrieved, as in Lucene); equal scores in row order.

    bm25s' own top-k breaks ties with an unstable sort whose order depends on the CPU's vector
    units, so the same run gave other rankings (and NFCorpus other numbers) on other machines.
    """
    hits = np.flatnonzero(scores > 0)
    return hits[np.argsort(-scores[hits], kind="stable")[:k]]


class BM25Index:
    def __init__(self, texts: list[str]):
        import bm25s

        self.n_docs = len(texts)
        self.model = bm25s.BM25()
        self.model.index(_tokenize(texts), show_progress=False)

    def search(self, queries: list[str], k: int = 100) -> Ranking:
        """The top k documents of each query, best first (row -1 past the documents it matches),
        the same on every machine (`top_rows`)."""
        depth = min(k, self.n_docs)
        rows = np.full((len(queries), depth), -1, dtype=np.int64)
        scores = np.zeros((len(queries), depth), dtype=np.float32)
        for i, tokens in enumerate(_tokenize(queries)):
            doc_scores = self.model.get_scores_from_ids(self.model.get_tokens_ids(tokens))
            best = top_rows(doc_scores, depth)
            rows[i, :len(best)], scores[i, :len(best)] = best, doc_scores[best]
        return Ranking(scores, rows)

"""BM25 (via `bm25s`): the lexical baseline and the hard-negative miner."""
from retriever.ranking import Ranking


def _tokenize(texts: list[str]):
    import bm25s
    import Stemmer  # PyStemmer: English stemming makes BM25 a fair baseline

    return bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False)


class BM25Index:
    def __init__(self, texts: list[str]):
        import bm25s

        self.n_docs = len(texts)
        self.model = bm25s.BM25()
        self.model.index(_tokenize(texts), show_progress=False)

    def search(self, queries: list[str], k: int = 100) -> Ranking:
        """The top k documents of each query, best first."""
        rows, scores = self.model.retrieve(_tokenize(queries), k=min(k, self.n_docs), show_progress=False)
        return Ranking(scores, rows)

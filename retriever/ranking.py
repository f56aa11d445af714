"""What every retriever here returns: for each query, its best documents' scores and corpus rows."""
from typing import NamedTuple

import numpy as np


class Ranking(NamedTuple):
    """scores and rows, each (n_queries, depth), best first; row -1 marks a missing result.
    BM25 (retriever.bm25) and FAISS (retriever.searcher) both return one."""
    scores: np.ndarray
    rows: np.ndarray

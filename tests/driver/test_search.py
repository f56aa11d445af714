"""FAISS indexes: exact search is exact; IVF and HNSW find (nearly) the same neighbours."""
import numpy as np
import pytest

from retriever.driver.search import build_index, search


def clustered(n, dim=16, clusters=50, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centres[rng.integers(clusters, size=n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_index_returns_the_exact_inner_product_top_k_in_order():
    docs, queries = clustered(500), clustered(20, seed=1)
    scores, rows = search(build_index(docs, "flat"), queries, depth=10, batch_size=7)  # 3 batches
    expected = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    assert (rows == expected).all()
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ docs.T, expected, axis=1), rtol=1e-5)


@pytest.mark.parametrize("index_type,min_recall", [("ivf", 0.9), ("hnsw", 0.95)])
def test_approximate_indexes_recall_the_exact_neighbours(index_type, min_recall):
    docs, queries = clustered(5000), clustered(50, seed=1)
    _, exact = search(build_index(docs, "flat"), queries, depth=20)
    _, approx = search(build_index(docs, index_type, nprobe=16), queries, depth=20)
    recall = np.mean([len(set(a) & set(e)) / 20 for a, e in zip(approx, exact)])
    assert min_recall <= recall <= 1.0


def test_depth_beyond_corpus_size_returns_every_document_once():
    docs = clustered(30)
    _, rows = search(build_index(docs, "hnsw"), clustered(3, seed=1), depth=100)
    assert rows.shape == (3, 30) and all(sorted(r) == list(range(30)) for r in rows)

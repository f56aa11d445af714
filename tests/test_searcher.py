"""FAISS indexes: exact search is exact; IVF, IVF-PQ and HNSW find (nearly) the same neighbours."""
import numpy as np
import pytest

from retriever.driver import encode
from retriever.searcher import build_index, bytes_per_vector, search
from retriever.io import DataError


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


def test_ivfpq_compresses_each_vector_to_its_codes_and_still_finds_most_exact_neighbours():
    docs, queries = clustered(5000, dim=32), clustered(50, dim=32, seed=1)
    _, exact = search(build_index(docs, "flat"), queries, depth=20)
    index = build_index(docs, "ivfpq", nprobe=16, pq_m=8, pq_nbits=8)
    _, approx = search(index, queries, depth=20)
    recall = np.mean([len(set(a) & set(e)) / 20 for a, e in zip(approx, exact)])
    assert 0.6 <= recall <= 1.0  # measured 0.80: 8 codes of 8 bits for 32 numbers
    assert bytes_per_vector(index) == 8 + 8 and bytes_per_vector(build_index(docs, "flat")) == 4 * 32
    assert index.nlist == min(int(4 * 5000 ** 0.5), 5000 // 39) and index.nprobe == 16


@pytest.mark.parametrize("params,message", [({"pq_m": 5}, "--pq_m 5 must divide the embedding dimension 16"),
                                            ({"pq_nbits": 10}, "--pq_nbits 10: its 1024 centroids need at least"),
                                            ({"n_lists": 900}, "--n_lists 900: more clusters than the 500 vectors")])
def test_ivfpq_parameters_that_cannot_work_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        build_index(clustered(500), "ivfpq", **{"pq_m": 4, **params})


def test_depth_beyond_corpus_size_returns_every_document_once():
    docs = clustered(30)
    _, rows = search(build_index(docs, "hnsw"), clustered(3, seed=1), depth=100)
    assert rows.shape == (3, 30) and all(sorted(r) == list(range(30)) for r in rows)


# ---- embeddings that do not belong together are refused, naming both files and the field ----
def encode_both(model_dir, data, out, query_flags=(), corpus_flags=()):
    from retriever.driver import encode

    encode.main(["--model_name_or_path", str(model_dir), "--data_dir", str(data), "--output_file",
                 str(out / "corpus.npz"), *corpus_flags])
    encode.main(["--model_name_or_path", str(model_dir), "--data_dir", str(data), "--encode_is_query",
                 "--output_file", str(out / "queries.npz"), *query_flags])


def run_search(out, queries="queries.npz", corpus="corpus*.npz"):
    from retriever.driver import search as search_driver

    return search_driver.main(["--query_embeddings", str(out / queries), "--corpus_embeddings", str(out / corpus),
                               "--output_dir", str(out / "search")])


@pytest.mark.parametrize("field,query_flags", [("pooling", ["--pooling", "mean"]),
                                               ("normalize", ["--normalize", "False"]),
                                               ("append_eos", ["--append_eos", "False"]),
                                               ("query_template", ["--query_template", "what {text}"]),
                                               ("passage_template", ["--passage_prefix", "the "]),
                                               ("passage_max_len", ["--passage_max_len", "16"])])
def test_queries_and_corpus_encoded_differently_are_refused(tiny_model_dir, tiny_beir, tmp_path, field, query_flags):
    encode_both(tiny_model_dir, tiny_beir, tmp_path, query_flags=query_flags)
    with pytest.raises(DataError, match=f"queries.npz and .*corpus.*npz differ in '{field}'"):
        run_search(tmp_path)


def test_a_model_retrained_in_place_is_not_taken_for_the_old_one(tiny_model_dir, tiny_groups, tiny_beir, tmp_path):
    from retriever.driver import encode, train

    flags = ["--train_data", str(tiny_groups), "--output_dir", str(tmp_path / "model"), "--max_steps", "1",
             "--per_device_train_batch_size", "4", "--train_group_size", "2", "--query_max_len", "8",
             "--passage_max_len", "12", "--learning_rate", "1e-2", "--model_name_or_path", tiny_model_dir]
    train.main(flags)
    encode.main(["--model_name_or_path", str(tmp_path / "model"), "--data_dir", str(tiny_beir),
                 "--output_file", str(tmp_path / "corpus.npz")])
    train.main([*flags, "--seed", "3", "--overwrite_output_dir", "True"])  # same directory, new weights
    encode.main(["--model_name_or_path", str(tmp_path / "model"), "--data_dir", str(tiny_beir), "--encode_is_query",
                 "--output_file", str(tmp_path / "queries.npz")])
    with pytest.raises(DataError, match="differ in 'weights'"):
        run_search(tmp_path)


def test_swapped_query_and_corpus_files_are_refused(tiny_model_dir, tiny_beir, tmp_path):
    encode_both(tiny_model_dir, tiny_beir, tmp_path)
    with pytest.raises(DataError, match="passage embeddings, not queries: are the query and corpus files swapped"):
        run_search(tmp_path, queries="corpus.npz", corpus="queries.npz")


def test_a_stale_shard_of_an_earlier_encode_is_not_merged(tiny_model_dir, tiny_beir, tmp_path):
    from retriever.driver import encode

    common = ["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir)]
    for shard in (0, 1):
        encode.main([*common, "--num_shards", "2", "--shard_id", str(shard),
                     "--output_file", str(tmp_path / f"corpus.shard{shard}.npz")])
    encode.main([*common, "--output_file", str(tmp_path / "corpus.shard0.npz")])  # a later 1-shard encode
    encode.main([*common, "--encode_is_query", "--output_file", str(tmp_path / "queries.npz")])
    with pytest.raises(DataError, match=r"not hold one complete set of shards \(corpus.shard0.npz = shard 0 of 1, "
                                        r"corpus.shard1.npz = shard 1 of 2\)"):
        run_search(tmp_path, corpus="corpus.shard*.npz")


def test_embeddings_of_different_dimension_are_refused():
    from retriever.searcher import check_compatible
    from retriever.io import DataError

    with pytest.raises(DataError, match="differ in 'dim' \\(576 vs 32\\)"):
        check_compatible({"dim": 576, "model": "m"}, {"dim": 32, "model": "m"}, "queries.npz", "corpus.npz")


@pytest.mark.parametrize("damage", ["empty", "truncated", "shape"])
def test_damaged_embeddings_file_is_named_with_what_to_do(tiny_model_dir, tiny_beir, tmp_path, damage):
    import numpy as np

    from retriever.searcher import load_embeddings
    from retriever.io import DataError

    path = tmp_path / "corpus.npz"
    encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), "--output_file", str(path),
                 "--max_docs", "4"])
    data = path.read_bytes()
    if damage == "shape":
        with np.load(path) as d:
            np.savez(path, embeddings=d["embeddings"][:3], ids=d["ids"], meta=d["meta"])
    else:
        path.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    with pytest.raises(DataError, match=r"corpus.npz: .*[Rr]e-encode it"):
        load_embeddings(path)


def test_a_file_name_with_glob_characters_is_read_as_the_file(tiny_model_dir, tiny_beir, tmp_path):
    from retriever.searcher import load_corpus_shards

    path = tmp_path / "corpus[v1].npz"
    encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), "--output_file", str(path)])
    assert load_corpus_shards(str(path))[0].shape == (28, 32)

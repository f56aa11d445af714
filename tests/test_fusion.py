import pytest

from retriever.fusion import fuse


BM25 = {"q": {"a": 12.0, "b": 9.0, "c": 1.0}}    # ranks a=1, b=2, c=3
DENSE = {"q": {"c": 0.9, "a": 0.8, "d": 0.1}}    # ranks c=1, a=2, d=3


def test_reciprocal_rank_fusion_sums_one_over_k_plus_rank():
    fused = fuse([BM25, DENSE], "rrf", k=60)["q"]
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)
    assert fused["d"] == pytest.approx(1 / 63)
    assert list(fused) == ["a", "c", "b", "d"]  # best first


def test_rrf_reads_ranks_only_so_score_scales_do_not_matter():
    scaled = {"q": {d: s * 1000 for d, s in DENSE["q"].items()}}
    assert fuse([BM25, scaled], "rrf") == fuse([BM25, DENSE], "rrf")


def test_minmax_fusion_sums_per_query_normalised_scores():
    fused = fuse([BM25, DENSE], "minmax")["q"]
    assert fused["a"] == pytest.approx(1.0 + 0.875)      # (12-1)/11 + (0.8-0.1)/0.8
    assert fused["c"] == pytest.approx(0.0 + 1.0)
    assert fused["b"] == pytest.approx(8 / 11)
    assert fused["d"] == pytest.approx(0.0)


def test_fusion_keeps_depth_documents_and_every_query_of_either_run():
    fused = fuse([BM25, {"other": {"x": 1.0}}], "rrf", depth=2)
    assert list(fused["q"]) == ["a", "b"] and fused["other"] == {"x": pytest.approx(1 / 61)}
    with pytest.raises(ValueError, match="minmax, rrf"):
        fuse([BM25, DENSE], "max")

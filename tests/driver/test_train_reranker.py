"""driver.train_reranker: a cross-encoder trained on retriever groups that ranks better than untrained; bi-encoder flags refused."""
import json

import pytest
from transformers import set_seed

from retriever.arguments import ModelArguments
from retriever.data import load_queries
from retriever.driver import rerank, train_reranker
from retriever.metrics import write_trec_run
from retriever.modeling.loading import load_tokenizer
from retriever.modeling.reranker import RerankerModel
from retriever.spec import RerankerSpec, read_reranker_spec


def test_train_reranker_writes_model_head_spec_and_loss_log(reranker_dir, tiny_model_dir):
    for name in ("model.safetensors", "score_head.safetensors", "reranker_spec.json", "train_log.json",
                 "loss_curve.png", "tokenizer.json"):
        assert (reranker_dir / name).is_file(), name
    assert len(json.loads((reranker_dir / "train_log.json").read_text())) == 10
    assert read_reranker_spec(reranker_dir) == RerankerSpec(query_max_len=8, max_len=20, base_model=tiny_model_dir)


def test_the_trained_reranker_ranks_better_than_the_untrained_one(reranker_dir, tiny_model_dir, tiny_beir, tmp_path):
    set_seed(42)
    untrained = tmp_path / "untrained"
    RerankerModel.build(read_reranker_spec(reranker_dir), ModelArguments()).save(str(untrained), load_tokenizer(
        tiny_model_dir))
    docs = [json.loads(line)["_id"] for line in (tiny_beir / "corpus.jsonl").read_text().splitlines()]
    write_trec_run(tmp_path / "in.trec", {q: {d: float(-i) for i, d in enumerate(docs)}
                                          for q in load_queries(str(tiny_beir))})  # the same order for every query
    ndcg = {model.name: rerank.main(["--model_name_or_path", str(model), "--run_file", str(tmp_path / "in.trec"),
                                     "--data_dir", str(tiny_beir), "--rerank_depth", str(len(docs)),
                                     "--output_dir", str(tmp_path / model.name)])["nDCG@10"]
            for model in (untrained, reranker_dir)}
    assert ndcg[reranker_dir.name] > ndcg["untrained"] + 0.1, ndcg  # measured: 0.33 vs 0.13


@pytest.mark.parametrize("flags,named", [(["--temperature", "0.05"], "--temperature"),
                                         (["--loss", "distillation"], "--loss distillation trains a retriever"),
                                         (["--self_paced"], "--self_paced"),
                                         (["--grad_cache"], "--grad_cache"),
                                         (["--eval_data_dir", "dev"], "--eval_data_dir"),
                                         (["--query_template", "q {text}"], "--query_template")])
def test_train_reranker_refuses_bi_encoder_flags_it_would_ignore(tiny_model_dir, tiny_groups, tmp_path, flags, named):
    with pytest.raises(ValueError, match=named):
        train_reranker.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                             "--output_dir", str(tmp_path), "--train_group_size", "3", *flags])

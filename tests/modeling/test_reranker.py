"""The cross-encoder: pair tokenisation, listwise loss, save/load."""
import pytest
import torch

from retriever.arguments import ModelArguments
from retriever.collator import RerankCollator
from retriever.modeling.loss import listwise_loss
from retriever.modeling.reranker import RerankerModel
from retriever.spec import EmbeddingSpec, RerankerSpec
from retriever.text import tokenize_pairs


def test_pair_is_query_then_passage_then_one_eos_within_max_len(tokenizer):
    eos = tokenizer.eos_token_id
    q_only = tokenizer("apple banana", add_special_tokens=True)["input_ids"]
    long_passage = " ".join(["cherry"] * 50)
    (pair,) = tokenize_pairs(tokenizer, ["apple banana"], [long_passage], query_max_len=8, max_len=12)
    assert len(pair) == 12 and pair[-1] == eos and pair.count(eos) == 1
    assert pair[:len(q_only)] == q_only  # the query survives whole; the passage is cut
    (short,) = tokenize_pairs(tokenizer, [" ".join(["dog"] * 30)], ["fish"], query_max_len=4, max_len=12)
    assert short[:4] == tokenizer("dog dog dog dog")["input_ids"] and short[-2:] == [
        tokenizer.convert_tokens_to_ids("fish"), eos]


def test_reranker_scores_groups_and_trains_base_and_head(tiny_model_dir, tokenizer):
    torch.manual_seed(0)
    model = RerankerModel.build(RerankerSpec(base_model=tiny_model_dir), ModelArguments())
    examples = [{"query": "apple", "passages": [{"text": "apple banana"}, {"text": "dog"}, {"text": "sun"}]}] * 2
    batch = RerankCollator(tokenizer, RerankerSpec(query_max_len=8, max_len=20))(examples)
    out = model(**batch)
    assert out.scores.shape == (2, 3)
    torch.testing.assert_close(out.loss, listwise_loss(out.scores))
    out.loss.backward()
    assert model.head.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


@pytest.mark.parametrize("lora", [False, True])
def test_saved_reranker_loads_with_the_same_scores(tiny_model_dir, tokenizer, tmp_path, lora):
    torch.manual_seed(0)
    args = ModelArguments(lora=lora, lora_r=4, lora_target_modules="q_proj,v_proj")
    model = RerankerModel.build(RerankerSpec(base_model=tiny_model_dir), args).eval()
    if lora:  # non-zero adapters, so merging changes the weights
        for name, p in model.encoder.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p)
    batch = RerankCollator(tokenizer, RerankerSpec(query_max_len=8, max_len=20))([{"query": "apple", "passages": [{"text": "apple"}, {"text": "dog"}]}])
    with torch.no_grad():
        before = model.score(batch["pairs"])
    model.save(str(tmp_path), merge_lora=True)
    with torch.no_grad():
        after = RerankerModel.load(str(tmp_path)).eval().score(batch["pairs"])
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-5)


def test_loading_a_directory_without_a_reranker_says_so(tiny_model_dir):
    with pytest.raises(FileNotFoundError, match="not a trained re-ranker"):
        RerankerModel.load(tiny_model_dir)


def test_a_reranker_saved_before_reranker_spec_json_still_loads(tiny_model_dir, tokenizer, tmp_path):
    torch.manual_seed(0)
    model = RerankerModel.build(RerankerSpec(base_model=tiny_model_dir, query_prefix="q: ", query_max_len=8,
                                             max_len=20), ModelArguments()).eval()
    model.save(str(tmp_path))
    (tmp_path / "reranker_spec.json").unlink()  # what earlier versions wrote instead: an embedding spec
    EmbeddingSpec(base_model=tiny_model_dir, query_prefix="q: ", query_max_len=8, passage_max_len=12).save(tmp_path)
    loaded = RerankerModel.load(str(tmp_path)).eval()
    assert loaded.spec == model.spec
    batch = RerankCollator(tokenizer, loaded.spec)([{"query": "apple", "passages": [{"text": "apple"}, {"text": "dog"}]}])
    with torch.no_grad():
        torch.testing.assert_close(loaded.score(batch["pairs"]), model.score(batch["pairs"]))

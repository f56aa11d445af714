"""GradCache gives the full-batch loss and gradients, chunk by chunk."""
import json

import pytest
import torch

from retriever import grad_cache
from retriever.arguments import ModelArguments
from retriever.collator import TrainCollator
from retriever.spec import EmbeddingSpec
from retriever.data import TrainDataset, load_train_groups
from retriever.driver import train
from retriever.grad_cache import grad_cache_step
from retriever.modeling import EncoderModel


def tiny_encoder(model_dir, **model_kwargs):
    torch.manual_seed(0)
    spec = EmbeddingSpec(base_model=model_dir, pooling="last", temperature=0.05)
    return EncoderModel.build(spec, ModelArguments(**model_kwargs)).train()


def batch_of(tokenizer, groups_file, n_queries=5, group_size=3):
    dataset = TrainDataset(load_train_groups(str(groups_file)), group_size, seed=0)
    return TrainCollator(tokenizer, EmbeddingSpec(query_max_len=8, passage_max_len=12))([dataset[i] for i in range(n_queries)])


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def full_batch(model, batch, seed=0):
    model.zero_grad()
    torch.manual_seed(seed)
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), grads(model)


def chunked(model, batch, q_chunk, p_chunk, seed=0):
    model.zero_grad()
    torch.manual_seed(seed)
    loss = grad_cache_step(model.encode_query, model.encode_passage,
                           lambda q, p: model.loss(model, q, p)[0],
                           batch["query"], batch["passage"], q_chunk, p_chunk)
    return loss, grads(model)


def assert_same(a, b):
    (loss_a, grads_a), (loss_b, grads_b) = a, b
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-5, atol=1e-6)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-5, msg=name)  # fp32 sums, |g| up to ~20


@pytest.mark.parametrize("q_chunk,p_chunk", [(1, 1), (2, 4), (3, 7), (5, 15)])
def test_grad_cache_loss_and_gradients_equal_full_batch(tiny_model_dir, tokenizer, tiny_groups,
                                                        q_chunk, p_chunk):
    model = tiny_encoder(tiny_model_dir)
    batch = batch_of(tokenizer, tiny_groups)  # 5 queries, 15 passages: uneven chunks too
    assert_same(chunked(model, batch, q_chunk, p_chunk), full_batch(model, batch))


def test_grad_cache_with_lora_updates_only_adapters_with_full_batch_gradients(tiny_model_dir, tokenizer,
                                                                              tiny_groups):
    model = tiny_encoder(tiny_model_dir, lora=True, lora_r=4, lora_dropout=0.0, lora_target_modules="q_proj,v_proj")
    batch = batch_of(tokenizer, tiny_groups)
    result = chunked(model, batch, 2, 4)
    assert result[1] and all("lora_" in name for name in result[1])
    assert_same(result, full_batch(model, batch))


def test_grad_cache_replays_dropout_masks(tiny_model_dir, tokenizer, tiny_groups, monkeypatch):
    # One chunk per side: the no-graph pass and the graph pass must draw the same dropout
    # masks as the full-batch forward run from the same seed.
    model = tiny_encoder(tiny_model_dir, lora=True, lora_r=4, lora_dropout=0.5, lora_target_modules="q_proj,v_proj")
    batch = batch_of(tokenizer, tiny_groups)
    assert_same(chunked(model, batch, 5, 15), full_batch(model, batch))

    # Control: without the replay the gradients do not match, so the check above can fail.
    monkeypatch.setattr(grad_cache.RandomState, "replay", lambda self: torch.enable_grad())
    with pytest.raises(AssertionError):
        assert_same(chunked(model, batch, 5, 15), full_batch(model, batch))


def test_training_with_grad_cache_logs_the_same_losses_as_without(tiny_model_dir, tiny_groups, tmp_path):
    def run(out, *extra):
        train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                    "--output_dir", str(out), "--max_steps", "3", "--per_device_train_batch_size", "4",
                    "--train_group_size", "3", "--learning_rate", "1e-3", "--query_max_len", "8",
                    "--passage_max_len", "12", *extra])
        return [e["loss"] for e in json.loads((out / "train_log.json").read_text())]

    plain = run(tmp_path / "plain")
    cached = run(tmp_path / "gc", "--grad_cache", "--gc_q_chunk_size", "1", "--gc_p_chunk_size", "5")
    assert len(plain) == 3 and plain[0] != plain[-1]
    assert cached == pytest.approx(plain, rel=1e-4)

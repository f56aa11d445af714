import copy

import pytest
import torch
import torch.nn.functional as F

from retriever.arguments import ModelArguments
from retriever.modeling.encoder import EncoderModel
from retriever.modeling.loading import load_base_model
from retriever.pooling import pool
from retriever.spec import EmbeddingSpec


def test_forward_goes_through_the_four_graded_methods(tiny_encoder, tokenizer, monkeypatch):
    calls = []
    for name in ("pooling", "compute_similarity", "compute_labels", "compute_loss"):
        original = getattr(EncoderModel, name)

        def spy(self, *args, _original=original, _name=name):
            calls.append(_name)
            return _original(self, *args)
        monkeypatch.setattr(EncoderModel, name, spy)
    q = batch_of(tokenizer, ["apple banana", "river sun"])
    p = batch_of(tokenizer, ["apple cherry", "dog fish", "river tree", "zebra red"])
    out = tiny_encoder(query=q, passage=p)
    assert sorted(calls) == ["compute_labels", "compute_loss", "compute_similarity", "pooling", "pooling"]
    labels = EncoderModel.compute_labels(None, 2, 4)
    expected = F.cross_entropy(out.q_reps @ out.p_reps.T / tiny_encoder.spec.temperature, labels)
    torch.testing.assert_close(out.loss, expected)


def test_other_poolings_stay_available_beside_the_graded_one(tiny_encoder, tokenizer):
    b = batch_of(tokenizer, ["apple banana cherry", "sun"])
    with torch.no_grad():
        hidden = tiny_encoder.encoder(**b).last_hidden_state
        mean = EncoderModel(tiny_encoder.encoder, spec=EmbeddingSpec(pooling="mean")).encode(b)
        raw_last = EncoderModel(tiny_encoder.encoder, spec=EmbeddingSpec(pooling="last", normalize=False)).encode(b)
    torch.testing.assert_close(mean, F.normalize(pool(hidden, b["attention_mask"], "mean"), dim=-1))
    torch.testing.assert_close(raw_last, pool(hidden, b["attention_mask"], "last"))


@pytest.fixture(scope="module")
def tiny_encoder(tiny_model_dir):
    return EncoderModel(load_base_model(tiny_model_dir), spec=EmbeddingSpec(pooling="last", normalize=True, temperature=0.05))


def batch_of(tokenizer, texts):
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def test_forward_gives_loss_and_gradients_reach_the_base_model(tiny_encoder, tokenizer):
    model = copy.deepcopy(tiny_encoder)
    q = batch_of(tokenizer, ["apple banana", "river sun"])
    p = batch_of(tokenizer, ["apple cherry", "dog fish", "river tree", "zebra red"])
    out = model(query=q, passage=p)
    assert out.scores.shape == (2, 4) and out.loss.ndim == 0
    out.loss.backward()
    grads = [p.grad for p in model.encoder.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


def test_embeddings_are_unit_length_unless_normalisation_is_off(tiny_encoder, tokenizer):
    b = batch_of(tokenizer, ["apple banana cherry", "sun"])
    with torch.no_grad():
        torch.testing.assert_close(tiny_encoder.encode(b).norm(dim=-1), torch.ones(2))
        raw = EncoderModel(tiny_encoder.encoder, spec=EmbeddingSpec(normalize=False)).encode(b)
    assert not torch.allclose(raw.norm(dim=-1), torch.ones(2))


def test_padding_side_does_not_change_embeddings(tiny_encoder, tokenizer):
    texts = ["apple banana cherry dog", "sun"]
    with torch.no_grad():
        tokenizer.padding_side = "right"
        right = tiny_encoder.encode(batch_of(tokenizer, texts))
        tokenizer.padding_side = "left"
        left = tiny_encoder.encode(batch_of(tokenizer, texts))
    torch.testing.assert_close(right, left, rtol=1e-4, atol=1e-5)


def test_save_and_load_round_trip(tiny_encoder, tokenizer, tmp_path):
    model = EncoderModel(tiny_encoder.encoder, spec=EmbeddingSpec(base_model="tiny", temperature=0.05))
    model.save(str(tmp_path))
    loaded = EncoderModel.load(str(tmp_path))
    assert loaded.spec == model.spec and (loaded.spec.pooling, loaded.spec.temperature) == ("last", 0.05)
    b = batch_of(tokenizer, ["apple banana", "sun tree"])
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(b), tiny_encoder.encode(b))


@pytest.mark.parametrize("arch,pooling", [("llama", "last"), ("pythia", "last"), ("gpt2", "last"),
                                          ("bert", "cls")])
def test_base_model_swaps_by_flag_only_and_pools_the_right_position(tiny_arch_dirs, arch, pooling):
    from retriever.collator import TrainCollator
    from retriever.modeling.loading import load_tokenizer

    args = ModelArguments(model_name_or_path=tiny_arch_dirs[arch], pooling=pooling)
    model = EncoderModel.build(EmbeddingSpec(base_model=args.model_name_or_path, pooling=pooling), args).eval()
    tok = load_tokenizer(args.model_name_or_path)
    batch = TrainCollator(tok, EmbeddingSpec(query_max_len=8, passage_max_len=16))(
        [{"query": "apple", "passages": [{"text": "apple tree dog"}, {"text": "sun"}]}])
    out = model(**batch)
    assert torch.isfinite(out.loss) and out.p_reps.shape[0] == 2
    ids, mask = batch["passage"]["input_ids"], batch["passage"]["attention_mask"]
    lengths = mask.sum(dim=1)
    # decoders: the one EOS ends each text and is what is pooled; BERT: [CLS] first, [SEP] once at the end
    expected_pos = lengths - 1 if pooling == "last" else torch.zeros_like(lengths)
    for row, n in enumerate(lengths.tolist()):
        real = ids[row, :n].tolist()
        assert real[-1] == tok.eos_token_id and real.count(tok.eos_token_id) == 1, real
        if pooling == "cls":
            assert real[0] == tok.cls_token_id
    with torch.no_grad():
        hidden = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    rows = torch.arange(ids.size(0))
    torch.testing.assert_close(out.p_reps, F.normalize(hidden[rows, expected_pos], dim=-1), rtol=1e-4, atol=1e-5)


def test_lora_trains_adapters_only_and_merged_save_loads_as_plain_model(tiny_model_dir, tokenizer, tmp_path):
    args = ModelArguments(model_name_or_path=tiny_model_dir, lora=True, lora_r=4,
                          lora_target_modules="q_proj,v_proj")
    model = EncoderModel.build(EmbeddingSpec(base_model=tiny_model_dir), args).eval()  # eval: LoRA dropout off
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.add_(0.1)  # make the adapter matter
    b = batch_of(tokenizer, ["apple banana", "sun tree"])
    with torch.no_grad():
        before = model.encode(b)
    model.save(str(tmp_path / "merged"), merge_lora=True)
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    with torch.no_grad():
        torch.testing.assert_close(EncoderModel.load(str(tmp_path / "merged")).encode(b), before,
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "bert"])
def test_lora_by_default_adapts_every_linear_layer_whatever_the_architecture(tiny_arch_dirs, arch):
    model = EncoderModel.build(EmbeddingSpec(base_model=tiny_arch_dirs[arch]), ModelArguments(lora=True, lora_r=4))
    plain = load_base_model(tiny_arch_dirs[arch])
    linear = {name for name, module in plain.named_modules() if isinstance(module, torch.nn.Linear)}
    adapted = {name for name, module in model.encoder.get_base_model().named_modules() if hasattr(module, "lora_A")}
    assert len(linear) >= 7 and adapted == linear, (linear - adapted, adapted - linear)


def test_labels_refuse_passages_that_are_not_whole_groups():
    with pytest.raises(ValueError, match=r"n_passages \(7\) must be a positive multiple of n_queries \(3\)"):
        EncoderModel.compute_labels(None, 3, 7)


def test_the_starter_codes_constructor_builds_the_spec_and_forward_scores_at_model_temperature(tiny_model_dir,
                                                                                              tokenizer):
    # the course's starter code: EncoderModel(encoder, pooling, normalize, temperature), then model.temperature
    model = EncoderModel(load_base_model(tiny_model_dir), pooling="last", normalize=True, temperature=0.07)
    assert (model.temperature, model.normalize) == (0.07, True)
    assert (model.spec.pooling, model.spec.normalize, model.spec.temperature) == ("last", True, 0.07)
    positional = EncoderModel(model.encoder, "mean", False, 0.5)
    assert (positional.spec.pooling, positional.normalize, positional.temperature) == ("mean", False, 0.5)
    q = batch_of(tokenizer, ["apple banana", "river sun"])
    p = batch_of(tokenizer, ["apple cherry", "dog fish", "river tree", "zebra red"])
    with torch.no_grad():
        out = model(query=q, passage=p)
        torch.testing.assert_close(out.scores, model.compute_similarity(out.q_reps, out.p_reps, model.temperature))
        model.temperature = 0.2  # written into the spec, and forward follows it
        assert model.spec.temperature == 0.2
        torch.testing.assert_close(model(query=q, passage=p).scores, out.scores * 0.07 / 0.2)


def test_the_constructor_refuses_a_spec_and_its_fields_together(tiny_encoder):
    with pytest.raises(ValueError, match="give temperature or spec, not both"):
        EncoderModel(tiny_encoder.encoder, temperature=0.1, spec=EmbeddingSpec())
    with pytest.raises(ValueError, match="temperature must be > 0"):
        EncoderModel(tiny_encoder.encoder, temperature=0)

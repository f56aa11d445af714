"""Encoding: length-sorted batches give the same embeddings, in the input order, as one text at a time."""
import numpy as np
import pytest

from retriever.driver import encode
from retriever.encoding import encode_texts, load_encoder


def test_length_sorted_batches_equal_one_text_at_a_time_in_input_order(tiny_model_dir):
    model, tokenizer = load_encoder(tiny_model_dir)
    # lengths deliberately out of order, so sorting moves every text
    texts = ["alpha beta " * n + "</s>" for n in (3, 9, 1, 6, 12, 2, 7)]
    batched = encode_texts(model, tokenizer, texts, max_len=64, batch_size=3)["last"]
    alone = np.stack([encode_texts(model, tokenizer, [t], max_len=64, batch_size=1)["last"][0] for t in texts])
    assert batched.shape == (7, 32)
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert len({tuple(np.round(r, 4)) for r in batched}) == 7  # distinct texts, distinct rows


def test_encode_texts_refuses_an_empty_list(tiny_model_dir):
    model, tokenizer = load_encoder(tiny_model_dir)
    with pytest.raises(ValueError, match="no texts"):
        encode_texts(model, tokenizer, [], max_len=16, batch_size=4)


def test_encode_of_an_empty_shard_names_the_shard_and_writes_nothing(tiny_model_dir, tiny_beir, tmp_path):
    out = tmp_path / "corpus.npz"
    # 28 documents in 40 shards: shard 39 is empty
    with pytest.raises(ValueError, match=f"shard 39 of {tiny_beir}"):
        encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), "--num_shards", "40",
                     "--shard_id", "39", "--output_file", str(out)])
    assert not out.exists()


def test_encode_parses_only_its_own_flags():
    with pytest.raises(ValueError, match="not used by the HfArgumentParser: \\['--lora'"):
        encode.main(["--lora", "True"])


def test_cached_embeddings_are_reused_only_for_the_same_weights_format_and_texts(tiny_model_dir, tmp_path,
                                                                                 monkeypatch):
    import shutil
    import types

    from safetensors.torch import load_file, save_file

    from retriever import encoding

    monkeypatch.setenv("RETRIEVER_CACHE", str(tmp_path / "cache"))
    computed = []
    original = encoding.encode_as_trained
    monkeypatch.setattr(encoding, "encode_as_trained", lambda *a, **k: computed.append(a[3]) or original(*a, **k))
    model, tokenizer = load_encoder(tiny_model_dir)
    texts = ["apple banana", "river sun tree"]

    def embed(model, texts, kind="passage"):
        encoded_before = len(computed)
        embeddings, reused = encoding.encode_cached(model, tokenizer, texts, kind, 4, "test")
        assert reused == (len(computed) == encoded_before)  # it says whether it encoded
        return embeddings

    first = embed(model, texts)
    np.testing.assert_array_equal(embed(model, texts), first)  # reused
    assert computed == ["passage"]
    embed(model, texts[:1])  # other texts
    embed(model, texts, "query")  # another kind
    other_format = types.SimpleNamespace(query_template=None, passage_template="what {text}")
    embed(load_encoder(tiny_model_dir, other_format)[0], texts)  # another template
    retrained = tmp_path / "retrained"  # the same directory name, other weights
    shutil.copytree(tiny_model_dir, retrained)
    weights = load_file(str(retrained / "model.safetensors"))
    save_file({k: v + 0.01 if "norm" in k else v for k, v in weights.items()}, str(retrained / "model.safetensors"),
              metadata={"format": "pt"})
    changed = embed(load_encoder(str(retrained))[0], texts)
    assert computed == ["passage"] * 2 + ["query"] + ["passage"] * 2 and not np.allclose(changed, first)
    assert len(list((tmp_path / "cache" / "embeddings").glob("*.npy"))) == 5


@pytest.mark.parametrize("damage", ["cut in half", "zero bytes", "not an array"])
def test_a_damaged_embedding_cache_entry_is_computed_again_with_a_warning_naming_it(tiny_model_dir, tmp_path,
                                                                                      monkeypatch, caplog, damage):
    # reliability round 4, case 6: a cut cache file was refused naming neither the cache nor the file; an empty
    # one ended in a traceback (EOFError)
    from retriever import encoding

    monkeypatch.setenv("RETRIEVER_CACHE", str(tmp_path / "cache"))
    model, tokenizer = load_encoder(tiny_model_dir)
    texts = ["apple banana", "river sun tree"]
    first, reused = encoding.encode_cached(model, tokenizer, texts, "passage", 4, "test")
    entry, = (tmp_path / "cache" / "embeddings").glob("*.npy")
    data = entry.read_bytes()
    entry.write_bytes({"cut in half": data[: len(data) // 2], "zero bytes": b"",
                       "not an array": b"not numpy at all"}[damage])
    again, reused = encoding.encode_cached(model, tokenizer, texts, "passage", 4, "test")
    assert not reused and np.array_equal(again, first)
    assert f"embedding cache: {entry} is damaged" in caplog.text
    assert np.array_equal(np.load(entry), first)  # written whole again: the next run reuses it
    assert encoding.encode_cached(model, tokenizer, texts, "passage", 4, "test")[1]

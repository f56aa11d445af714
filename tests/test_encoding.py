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

"""driver.encode: a BEIR corpus or a split's queries into an embeddings file."""
import json

import numpy as np
import pytest

from retriever.driver import encode, train
from tests.conftest import TRAIN_FLAGS


def test_encode_refuses_a_model_with_nan_weights(tiny_model_dir, tiny_beir, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = load_file(str(broken / "model.safetensors"))
    weights = {k: torch.full_like(v, float("nan")) if "norm" in k else v for k, v in weights.items()}
    save_file(weights, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="NaN/inf embeddings for 28 of 28 texts"):
        encode.main(["--model_name_or_path", str(broken), "--data_dir", str(tiny_beir),
                     "--output_file", str(tmp_path / "corpus.npz")])
    assert not (tmp_path / "corpus.npz").exists()


def test_encode_several_poolings_in_one_pass_equals_one_pass_each(tiny_model_dir, tiny_beir, tmp_path):
    common = ["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir)]
    outputs = encode.main([*common, "--poolings", "last,mean", "--output_file", str(tmp_path / "{pooling}.npz")])
    assert sorted(outputs) == [str(tmp_path / "last.npz"), str(tmp_path / "mean.npz")]
    for pooling in ("last", "mean"):
        single = encode.main([*common, "--pooling", pooling, "--output_file", str(tmp_path / f"one-{pooling}.npz")])
        with np.load(tmp_path / f"{pooling}.npz") as both, np.load(single) as one:
            np.testing.assert_allclose(both["embeddings"], one["embeddings"], rtol=1e-5, atol=1e-6)
            assert json.loads(str(both["meta"]))["pooling"] == pooling
    with pytest.raises(ValueError, match="needs '\\{pooling\\}'"):
        encode.main([*common, "--poolings", "last,mean", "--output_file", str(tmp_path / "x.npz")])


def test_template_and_eos_choice_are_saved_with_the_model_and_reused_by_encode(tiny_model_dir, tiny_groups,
                                                                               tiny_beir, tmp_path):
    from retriever.text import join_title
    from retriever.data import load_corpus
    from retriever.encoding import encode_texts, load_encoder

    template = "what is {text} in the sun"
    out = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir",
                      str(tmp_path / "m"), *TRAIN_FLAGS[2:], "--max_steps", "1", "--passage_max_len", "10",
                      "--query_template", template, "--passage_template", template, "--append_eos", "False"])
    fmt = json.loads((out / "embedding_spec.json").read_text())
    assert (fmt["query_template"], fmt["passage_template"], fmt["append_eos"]) == (template, template, False)
    path = encode.main(["--model_name_or_path", str(out), "--data_dir", str(tiny_beir),
                        "--output_file", str(tmp_path / "corpus.npz")])
    model, tokenizer = load_encoder(str(out))
    docs = load_corpus(str(tiny_beir))
    by_hand = encode_texts(model, tokenizer, [join_title(d["text"], d["title"]) for d in docs], 10, 8,
                           template=template, append_eos=False)["last"]
    with np.load(path) as saved:
        meta = json.loads(str(saved["meta"]))
        assert (meta["template"], meta["append_eos"], meta["max_len"]) == (template, False, 10)
        np.testing.assert_allclose(saved["embeddings"], by_hand, rtol=1e-5, atol=1e-6)


def test_a_model_trained_with_mean_pooling_is_encoded_with_mean_pooling_by_default(tiny_model_dir, tiny_groups,
                                                                                  tiny_beir, tmp_path):
    from retriever.modeling import EncoderModel

    model = train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir",
                        str(tmp_path / "m"), *TRAIN_FLAGS[2:], "--max_steps", "1", "--pooling", "mean"])
    path = encode.main(["--model_name_or_path", str(model), "--data_dir", str(tiny_beir),
                        "--output_file", str(tmp_path / "c.npz")])  # no --pooling: the saved one wins
    mean = encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir), "--pooling", "mean",
                        "--output_file", str(tmp_path / "base-mean.npz")])
    with np.load(path) as saved, np.load(mean) as other:
        assert json.loads(str(saved["meta"]))["pooling"] == "mean"
        assert not np.allclose(saved["embeddings"], other["embeddings"])  # trained weights, mean pooled
    assert EncoderModel.load(str(model), pooling="last").spec.pooling == "mean"


def test_a_pooling_flag_a_trained_model_ignores_is_said_on_the_console(trained, tiny_beir, tmp_path, caplog):
    # reliability round 3, case 15: the trained model's own pooling wins, and the ignored flag is named
    with caplog.at_level("WARNING", logger="retriever.encoding"):
        path = encode.main(["--model_name_or_path", str(trained), "--data_dir", str(tiny_beir), "--pooling", "mean",
                            "--output_file", str(tmp_path / "c.npz")])
    with np.load(path) as saved:
        assert json.loads(str(saved["meta"]))["pooling"] == "last"
    assert "was trained with pooling last; ignoring --pooling mean" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="retriever.encoding"):
        encode.main(["--model_name_or_path", str(trained), "--data_dir", str(tiny_beir), "--pooling", "last",
                     "--output_file", str(tmp_path / "d.npz")])
    assert "ignoring" not in caplog.text

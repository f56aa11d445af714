"""Texts -> embeddings with a retriever: the library behind encode, mine and the benchmarks.

Texts are shaped by `text.tokenize` (template, truncation, EOS), sorted by
length so little compute goes to padding, encoded in batches on the model's
device, and returned in their original order.
"""
import contextlib
import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from retriever.collator import pad
from retriever.distributed import broadcast, gather_rows, my_slice, rank, world_size
from retriever.data import load_qrels, load_queries
from retriever.modeling.encoder import EncoderModel
from retriever.modeling.loading import best_device, load_tokenizer
from retriever.io import atomic_write
from retriever.resolve import cache_root, weights_fingerprint
from retriever.spec import MODEL_FIELDS, PLACEHOLDER, SPEC_FILE, TEXT_FIELDS, EmbeddingSpec, given_fields, read_spec
from retriever.text import join_title, tokenize

logger = logging.getLogger(__name__)


def autocast(device: str, bf16: bool, fp16: bool):
    if bf16 or fp16:
        return torch.autocast(device_type=device, dtype=torch.bfloat16 if bf16 else torch.float16)
    return contextlib.nullcontext()


def half_weights(model, device: str, bf16: bool, fp16: bool):
    """On a GPU, --bf16/--fp16 encode casts the weights themselves: inference needs no
    fp32 master copy, and autocast would re-cast every weight in every forward."""
    if device == "cuda" and (bf16 or fp16):
        model = model.to(torch.bfloat16 if bf16 else torch.float16)
    return model


@torch.inference_mode()
def encode_texts(model: EncoderModel, tokenizer, texts: list[str], max_len: int, batch_size: int,
                 device: Optional[str] = None, bf16: bool = False, fp16: bool = False, desc: str = "encode",
                 poolings: Optional[list[str]] = None, template: str = PLACEHOLDER,
                 append_eos: bool = True) -> dict[str, np.ndarray]:
    """{pooling: embeddings (n, dim) float32 in the order of `texts`}; default: the model's pooling.

    Texts are shaped by `text.tokenize` (template, truncation, EOS). `device`
    defaults to the one the model is on."""
    if not texts:
        raise ValueError("encode_texts: no texts to encode")
    poolings = poolings or [model.spec.pooling]
    device = device or device_of(model)
    token_ids = tokenize(tokenizer, texts, max_len, template, append_eos)
    order = sorted(range(len(texts)), key=lambda i: -len(token_ids[i]))  # longest first: OOM shows at once
    # On a GPU nothing below waits for the GPU: inputs go up from pinned memory and
    # embeddings come back asynchronously, so Python pads batch k+1 while batch k runs.
    cuda = device == "cuda"
    parts = {mode: [] for mode in poolings}
    with tqdm(total=len(texts), desc=desc, unit="text") as bar:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = pad(tokenizer, [token_ids[i] for i in rows])
            batch = {k: (v.pin_memory() if cuda else v).to(device, non_blocking=cuda) for k, v in batch.items()}
            with autocast(device, bf16, fp16):
                reps = model.encode_poolings(batch, poolings)
            for mode, r in reps.items():
                parts[mode].append(r.float().to("cpu", non_blocking=cuda))  # (batch, dim)
            bar.update(len(rows))
    if cuda:
        torch.cuda.synchronize()  # the asynchronous copies above have landed
    out = {}
    for mode, chunks in parts.items():
        embeddings = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float32)
        embeddings[order] = torch.cat(chunks).numpy()  # back to the order of `texts`
        out[mode] = embeddings
    return out


def encode_as_trained(model: EncoderModel, tokenizer, texts: list[str], kind: str, batch_size: int, desc: str,
                      task: Optional[str] = None, bf16: bool = False, fp16: bool = False,
                      reading: Optional[EmbeddingSpec] = None) -> np.ndarray:
    """Embeddings (n, dim) of "query" or "passage" texts as the model was trained: `encode_pooled` with the
    model's own pooling."""
    return encode_pooled(model, tokenizer, texts, kind, batch_size, desc, task, bf16, fp16,
                         reading=reading)[model.spec.pooling]


def encode_pooled(model: EncoderModel, tokenizer, texts: list[str], kind: str, batch_size: int, desc: str,
                  task: Optional[str] = None, bf16: bool = False, fp16: bool = False,
                  poolings: Optional[list[str]] = None, reading: Optional[EmbeddingSpec] = None
                  ) -> dict[str, np.ndarray]:
    """{pooling: embeddings (n, dim)} of "query" or "passage" texts shaped as the model's spec says (template
    with the task's prefix, EOS, max length), pooled as the model pools or each of `poolings` from one pass.
    Every driver encodes through here: it reads `model.spec`, so no caller unpacks it. `reading`, another spec
    of the same model, shapes the text instead: training's own (--train_passage_max_len) for the dev set."""
    spec = reading or model.spec
    return encode_texts(model, tokenizer, texts, spec.max_len(kind), batch_size, bf16=bf16, fp16=fp16, desc=desc,
                        poolings=poolings or [spec.pooling], template=spec.template(kind, task),
                        append_eos=spec.append_eos)


def encode_across_ranks(model: EncoderModel, tokenizer, texts: list[str], kind: str, batch_size: int, desc: str,
                        task: Optional[str] = None, bf16: bool = False, fp16: bool = False,
                        poolings: Optional[list[str]] = None) -> Optional[dict[str, np.ndarray]]:
    """`encode_pooled` under torchrun: each rank encodes its own slice of `texts` (distributed.my_slice), and rank 0
    gets them back in the order of `texts`, exactly what one process encodes; the other ranks get None. Alone:
    `encode_pooled`."""
    if world_size() == 1:
        return encode_pooled(model, tokenizer, texts, kind, batch_size, desc, task, bf16, fp16, poolings)
    poolings = poolings or [model.spec.pooling]
    part = my_slice(len(texts))
    logger.info("rank %d of %d: %s texts %d to %d of %d", rank(), world_size(), kind, part.start, part.stop, len(texts))
    if len(part):
        local = encode_pooled(model, tokenizer, texts[part.start:part.stop], kind, batch_size, desc, task, bf16, fp16,
                              poolings)
    else:  # more ranks than texts
        local = {mode: np.zeros((0, model.encoder.config.hidden_size), np.float32) for mode in poolings}
    gathered = {mode: gather_rows(local[mode]) for mode in poolings}
    return gathered if rank() == 0 else None


def encode_gathered(model: EncoderModel, tokenizer, texts: list[str], kind: str, batch_size: int, desc: str,
                    task: Optional[str] = None, bf16: bool = False, fp16: bool = False) -> Optional[np.ndarray]:
    """`encode_as_trained`, under torchrun across the ranks (encode_across_ranks): None on ranks other than 0."""
    if world_size() == 1:
        return encode_as_trained(model, tokenizer, texts, kind, batch_size, desc, task, bf16, fp16)
    by_pooling = encode_across_ranks(model, tokenizer, texts, kind, batch_size, desc, task, bf16, fp16)
    return by_pooling and by_pooling[model.spec.pooling]


def encode_cached(model: EncoderModel, tokenizer, texts: list[str], kind: str, batch_size: int, desc: str,
                  task: Optional[str] = None, bf16: bool = False, fp16: bool = False
                  ) -> tuple[Optional[np.ndarray], bool]:
    """(embeddings, whether they were reused): `encode_gathered`, kept in $RETRIEVER_CACHE/embeddings and
    reused by the next run that asks for the same vectors: the same weights (their fingerprint), the same
    spec reading fields, kind and task, the same precision, device and torch version, and the same texts
    in the same order.
    When any of these differs, or the weights have no fingerprint (a hub name), nothing is reused; a damaged
    entry is computed again, with a warning naming it. Under torchrun rank 0 reads and writes the cache.
    For models that do not change between runs: a base model read zero-shot, MiniLM."""
    fingerprint = weights_fingerprint(model.name_or_path)
    if fingerprint is None:
        logger.info("%s: no local weights to fingerprint, so no embedding cache", model.name_or_path)
        return encode_gathered(model, tokenizer, texts, kind, batch_size, desc, task, bf16, fp16), False
    texts_digest = hashlib.sha256()
    for text in texts:
        texts_digest.update(text.encode("utf-8") + b"\0")
    key = {"weights": fingerprint, "reading": model.spec.reading(task), "padding_side": model.spec.padding_side,
           "kind": kind, "bf16": bf16, "fp16": fp16, "device": device_of(model), "torch": torch.__version__,
           "texts": texts_digest.hexdigest(), "n": len(texts)}
    path = cache_root() / "embeddings" / (hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
                                          + ".npy")
    cached = read_cache_entry(path, len(texts)) if rank() == 0 else None
    if broadcast(cached is not None):
        logger.info("%s: %d %s embeddings reused from %s", model.name_or_path, len(texts), kind, path)
        return cached, True
    embeddings = encode_gathered(model, tokenizer, texts, kind, batch_size, desc, task, bf16, fp16)
    if embeddings is not None:
        with atomic_write(path, "wb") as f:
            np.save(f, embeddings)
    return embeddings, False


def read_cache_entry(path: Path, n: int) -> Optional[np.ndarray]:
    """The embeddings an earlier run left at `path`, or None: none there, or a damaged entry (with a warning)."""
    if not path.is_file():
        return None
    try:
        embeddings = np.load(path)
        whole = embeddings.ndim == 2 and embeddings.shape[0] == n and bool(np.isfinite(embeddings).all())
        why = f"shape {embeddings.shape} for {n} texts, or NaN/inf"
    except (OSError, ValueError, EOFError) as e:  # cut short, empty, not an .npy
        whole, why = False, f"{type(e).__name__}: {e}"
    if not whole:
        logger.warning("embedding cache: %s is damaged (%s); computing the embeddings again", path, why)
        return None
    return embeddings


def load_encoder(model_dir: str, flags=None):
    """(model on the best device, in eval mode; tokenizer): a trained model as its spec says, with the
    text flags given (SpecArguments, or a dict; not None) applied over it; a base model with the spec's
    defaults and every flag given; with flags.zero_shot, a trained model's base model read as it was
    trained. The model's spec is `model.spec`; where its weights came from, `model.name_or_path`."""
    given = given_fields(flags or {})
    if getattr(flags, "zero_shot", False):  # the base model, reading text as the trained one does
        trained = read_spec(model_dir)
        if not (Path(model_dir) / SPEC_FILE).is_file() or not trained.base_model:
            raise ValueError(f"--zero_shot: {model_dir} is not a trained model (no {SPEC_FILE} naming its base model)")
        spec = dataclasses.replace(trained, lora=False).with_given(given)
        model = EncoderModel.load(trained.base_model, spec)
        kept, whole = saved_layer_count(model_dir), model.encoder.config.num_hidden_layers
        if kept is not None and kept < whole:  # the base would not be the model it was trained from
            raise ValueError(f"--zero_shot: {model_dir} keeps the first {kept} of {trained.base_model}'s {whole} "
                             "layers (trained with --drop_last_layers), so the base read whole is not its zero-shot "
                             "baseline; evaluate the base model itself, with this model's text flags, for that")
        return model.to(best_device()).eval(), load_tokenizer(trained.base_model, spec.padding_side)
    spec = read_spec(model_dir, **given)
    differ = {name: given[name] for name in MODEL_FIELDS if name in given and getattr(spec, name) != given[name]}
    if differ:  # a trained model pools only as it was trained
        logger.warning("%s was trained with %s; ignoring %s", model_dir,
                       ", ".join(f"{name} {getattr(spec, name)}" for name in differ),
                       ", ".join(f"--{name} {value}" for name, value in differ.items()))
    spec = spec.with_given(given, TEXT_FIELDS)
    tokenizer = load_tokenizer(model_dir, spec.padding_side)
    model = EncoderModel.load(model_dir, spec)
    return model.to(best_device()).eval(), tokenizer


def saved_layer_count(model_dir: str) -> Optional[int]:
    """The transformer layers a saved full model has (its config.json), or None (a LoRA adapter, no count)."""
    try:
        count = json.loads((Path(model_dir) / "config.json").read_text()).get("num_hidden_layers")
    except (OSError, ValueError):
        return None
    return count if isinstance(count, int) else None


def device_of(model) -> str:
    return next(model.parameters()).device.type


def split_queries(data_dir: str, split: str) -> tuple[list[str], list[str]]:
    """(ids, texts) of the queries judged in qrels/<split>.tsv, in queries.jsonl's order."""
    queries = load_queries(data_dir)
    wanted = load_qrels(data_dir, split)
    missing = [q for q in wanted if q not in queries]
    if missing:
        logger.warning("%d qrels query ids are not in queries.jsonl (e.g. %s)", len(missing), missing[0])
    ids = [q for q in queries if q in wanted]
    return ids, [queries[q] for q in ids]


def corpus_texts(docs: list[dict]) -> tuple[list[str], list[str]]:
    """(ids, texts) of corpus documents as a model reads them: title, then text."""
    return [d["id"] for d in docs], [join_title(d["text"], d["title"]) for d in docs]


def embedding_meta(model_name: str, spec: EmbeddingSpec, kind: str, dim: int, task: Optional[str] = None,
                   shard=(0, 1)) -> dict:
    """What an embeddings file (or a saved index) records of how it was made: the model, its weights'
    fingerprint and the spec's reading fields, which search compares (searcher.COMPATIBLE_FIELDS)
    before it puts queries and passages together."""
    return {"model": str(Path(model_name).resolve()) if Path(model_name).exists() else model_name,
            "weights": weights_fingerprint(model_name), "dim": int(dim), "kind": kind,
            "max_len": spec.max_len(kind), "template": spec.template(kind, task), **spec.reading(task),
            "padding_side": spec.padding_side, "task": task, "shard": list(shard)}


def check_finite_embeddings(embeddings: np.ndarray, model_name: str) -> None:
    """Refuse NaN/inf embeddings (a diverged training) before anything is written."""
    bad = int((~np.isfinite(embeddings).all(axis=1)).sum())
    if bad:
        raise ValueError(f"{model_name} gave NaN/inf embeddings for {bad} of {len(embeddings)} texts: its weights are "
                         "broken (a diverged training?); nothing written. Retrain it.")

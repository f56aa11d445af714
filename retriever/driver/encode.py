"""Encode a BEIR corpus (or a split's queries) into embeddings on disk.

    python -m retriever.driver.encode --model_name_or_path runs/model \
        --data_dir ../shared/data/scifact --output_file runs/emb/corpus.npz [--encode_is_query]

Writes one .npz per call: `embeddings` (n, dim) float32, `ids`, and `meta`
(model, dim, ...) that search checks. Texts are sorted by length before batching
so little compute goes to padding; the original order is restored on output.
"""
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm
from transformers import HfArgumentParser

from retriever.arguments import EncodeArguments, ModelArguments
from retriever.collator import format_text, pad, read_text_format, tokenize, trained_prefix
from retriever.data import load_corpus, load_qrels, load_queries
from retriever.io import atomic_write
from retriever.modeling import EncoderModel
from retriever.modeling.loading import best_device, load_tokenizer
from retriever.driver import run_cli, setup_logging

logger = logging.getLogger(__name__)


def load_texts(args: EncodeArguments, prefix: str) -> tuple[list[str], list[str]]:
    """(ids, formatted texts) of this shard of the corpus, or of the split's queries."""
    if args.encode_is_query:
        queries = load_queries(args.data_dir)
        wanted = load_qrels(args.data_dir, args.split)
        missing = [q for q in wanted if q not in queries]
        if missing:
            logger.warning("%d qrels query ids are not in queries.jsonl (e.g. %s)", len(missing), missing[0])
        ids = [q for q in queries if q in wanted]
        texts = [format_text(queries[q], prefix) for q in ids]
    else:
        docs = load_corpus(args.data_dir, args.corpus_file)
        shard = np.array_split(np.arange(len(docs)), args.num_shards)[args.shard_id]  # contiguous slice
        docs = [docs[i] for i in shard]
        ids = [d["id"] for d in docs]
        texts = [format_text(d["text"], prefix, d["title"]) for d in docs]
    if args.max_docs is not None:
        ids, texts = ids[: args.max_docs], texts[: args.max_docs]
    return ids, texts


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
                 poolings: Optional[list[str]] = None) -> dict[str, np.ndarray]:
    """{pooling: embeddings (n, dim) float32 in the order of `texts`}; default: the model's pooling.

    `device` defaults to the one the model is on."""
    if not texts:
        raise ValueError("encode_texts: no texts to encode")
    poolings = poolings or [model.pooling]
    device = device or device_of(model)
    token_ids = tokenize(tokenizer, texts, max_len)
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


def save_embeddings(path, embeddings: np.ndarray, ids: list[str], meta: dict) -> None:
    with atomic_write(path, "wb") as f:
        np.savez(f, embeddings=embeddings, ids=np.array(ids, dtype=str), meta=json.dumps(meta))


def load_encoder(model_dir: str, pooling: str = "last", normalize: bool = True, padding_side: str = "right"):
    """(model on the best device, in eval mode; tokenizer; the model's text format)."""
    fmt = read_text_format(model_dir)
    tokenizer = load_tokenizer(model_dir, fmt.get("padding_side", padding_side))
    model = EncoderModel.load(model_dir, pooling, normalize)
    return model.to(best_device()).eval(), tokenizer, fmt


def device_of(model) -> str:
    return next(model.parameters()).device.type


def main(argv=None):
    model_args, args = HfArgumentParser((ModelArguments, EncodeArguments)).parse_args_into_dataclasses(args=argv)
    setup_logging()
    model_dir = model_args.model_name_or_path
    model, tokenizer, fmt = load_encoder(model_dir, model_args.pooling, model_args.normalize,
                                         model_args.padding_side)
    device = device_of(model)
    model = half_weights(model, device, args.bf16, args.fp16)
    kind = "query" if args.encode_is_query else "passage"
    prefix = args.prefix if args.prefix is not None else trained_prefix(fmt, kind, args.task)
    max_len = args.max_len or fmt.get(f"{kind}_max_len", 32 if args.encode_is_query else 128)

    ids, texts = load_texts(args, prefix)
    if not texts:
        source = (f"qrels/{args.split}.tsv of {args.data_dir}" if args.encode_is_query
                  else f"shard {args.shard_id} of {args.data_dir}")
        raise ValueError(f"nothing to encode: no {kind} texts in {source}")
    logger.info("encoding %d %s texts (max %d tokens) with %s on %s", len(texts), kind, max_len, model_dir, device)

    poolings = args.poolings.split(",") if args.poolings else [model.pooling]
    by_pooling = encode_texts(model, tokenizer, texts, max_len, args.batch_size, device,
                              args.bf16, args.fp16, desc=f"encode {kind}", poolings=poolings)
    model_name = str(Path(model_dir).resolve()) if Path(model_dir).exists() else model_dir
    outputs = []
    for pooling, embeddings in by_pooling.items():
        meta = {"model": model_name,
                "dim": int(embeddings.shape[1]), "kind": kind, "max_len": max_len, "prefix": prefix,
                "pooling": pooling, "normalize": model.normalize,
                "shard": [args.shard_id, args.num_shards]}
        output_file = args.output_file.replace("{pooling}", pooling)
        save_embeddings(output_file, embeddings, ids, meta)
        logger.info("wrote %s: %d x %d", output_file, *embeddings.shape)
        outputs.append(output_file)
    return outputs[0] if len(outputs) == 1 else outputs


if __name__ == "__main__":
    sys.exit(run_cli(main))

"""Encode a BEIR corpus (or a split's queries) into embeddings on disk.

    python -m retriever.driver.encode --model_name_or_path runs/model \
        --data_dir ../shared/data/scifact --output_file runs/emb/corpus.npz [--encode_is_query]

Writes one .npz per call: `embeddings` (n, dim) float32, `ids`, and `meta`
(model, dim, ...) that search checks. Texts are sorted by length before batching
so little compute goes to padding; the original order is restored on output.
Several GPUs or machines: `torchrun --nproc_per_node N -m retriever.driver.encode ...`; each
process encodes its own slice, and the first writes the one file a single process writes.
"""
import dataclasses
import logging
import os
import sys

import numpy as np

from retriever.arguments import EncodeArguments
from retriever.data import load_corpus
from retriever.distributed import inference_group
from retriever.encoding import (check_finite_embeddings, corpus_texts, device_of, embedding_meta, encode_across_ranks,
                                half_weights, load_encoder, split_queries)
from retriever.resolve import resolve_model_path
from retriever.searcher import save_embeddings
from retriever.driver import make_parser, run_cli, setup_logging

logger = logging.getLogger(__name__)


def load_texts(args: EncodeArguments) -> tuple[list[str], list[str]]:
    """(ids, texts) of this shard of the corpus (title + text), or of the split's queries."""
    if args.encode_is_query:
        ids, texts = split_queries(args.data_dir, args.split)
    else:
        docs = load_corpus(args.data_dir, args.corpus_file)
        shard = np.array_split(np.arange(len(docs)), args.num_shards)[args.shard_id]  # contiguous slice
        ids, texts = corpus_texts([docs[i] for i in shard])
    if args.max_docs is not None:
        ids, texts = ids[: args.max_docs], texts[: args.max_docs]
    return ids, texts


def main(argv=None):
    args, = make_parser(EncodeArguments, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    if args.num_shards > 1 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("--num_shards: under torchrun each process takes its own slice of the corpus; leave "
                         "--num_shards and --shard_id out")
    with inference_group():
        return encode(args)


def encode(args: EncodeArguments):
    """The file(s) written (under torchrun: on rank 0; None on the others)."""
    model_dir = args.model_name_or_path
    kind = "query" if args.encode_is_query else "passage"
    resolve_model_path(model_dir)  # a model not trained yet is named first: the step before this one
    ids, texts = load_texts(args)  # a missing corpus is named before the model is loaded
    if not texts:
        source = (f"qrels/{args.split}.tsv of {args.data_dir}" if args.encode_is_query
                  else f"shard {args.shard_id} of {args.data_dir}")
        raise ValueError(f"nothing to encode: no {kind} texts in {source}")
    model, tokenizer = load_encoder(model_dir, args)
    model_dir = model.name_or_path  # the base model's with --zero_shot
    device = device_of(model)
    model = half_weights(model, device, args.bf16, args.fp16)
    spec = model.spec
    logger.info("encoding %d %s texts (max %d tokens) with %s on %s", len(texts), kind, spec.max_len(kind), model_dir,
                device)
    by_pooling = encode_across_ranks(model, tokenizer, texts, kind, args.batch_size, f"encode {kind}", args.task,
                                     args.bf16, args.fp16, args.poolings.split(",") if args.poolings else None)
    if by_pooling is None:  # under torchrun, a rank other than 0: its slice is with rank 0 now
        return None
    for embeddings in by_pooling.values():
        check_finite_embeddings(embeddings, model_dir)
    outputs = []
    for pooling, embeddings in by_pooling.items():
        meta = embedding_meta(model_dir, dataclasses.replace(spec, pooling=pooling), kind, embeddings.shape[1],
                              args.task, (args.shard_id, args.num_shards))
        output_file = args.output_file.replace("{pooling}", pooling)
        save_embeddings(output_file, embeddings, ids, meta)
        logger.info("wrote %s: %d x %d", output_file, *embeddings.shape)
        outputs.append(output_file)
    return outputs[0] if len(outputs) == 1 else outputs


if __name__ == "__main__":
    sys.exit(run_cli(main))

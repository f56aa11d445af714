"""Encode a BEIR corpus (or a split's queries) into embeddings on disk.

    python -m retriever.driver.encode --model_name_or_path runs/model \
        --data_dir ../shared/data/scifact --output_file runs/emb/corpus.npz [--encode_is_query]

Writes one .npz per call: `embeddings` (n, dim) float32, `ids`, and `meta`
(model, dim, ...) that search checks. Texts are sorted by length before batching
so little compute goes to padding; the original order is restored on output.
"""
import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np

from retriever.arguments import EncodeArguments
from retriever.collator import join_title
from retriever.data import load_corpus, load_qrels, load_queries
from retriever.encoding import device_of, encode_texts, half_weights, load_encoder
from retriever.modeling.loading import weights_fingerprint
from retriever.searcher import save_embeddings
from retriever.spec import EmbeddingSpec
from retriever.driver import make_parser, run_cli, setup_logging

logger = logging.getLogger(__name__)


def load_texts(args: EncodeArguments) -> tuple[list[str], list[str]]:
    """(ids, texts) of this shard of the corpus (title + text), or of the split's queries."""
    if args.encode_is_query:
        queries = load_queries(args.data_dir)
        wanted = load_qrels(args.data_dir, args.split)
        missing = [q for q in wanted if q not in queries]
        if missing:
            logger.warning("%d qrels query ids are not in queries.jsonl (e.g. %s)", len(missing), missing[0])
        ids = [q for q in queries if q in wanted]
        texts = [queries[q] for q in ids]
    else:
        docs = load_corpus(args.data_dir, args.corpus_file)
        shard = np.array_split(np.arange(len(docs)), args.num_shards)[args.shard_id]  # contiguous slice
        docs = [docs[i] for i in shard]
        ids = [d["id"] for d in docs]
        texts = [join_title(d["text"], d["title"]) for d in docs]
    if args.max_docs is not None:
        ids, texts = ids[: args.max_docs], texts[: args.max_docs]
    return ids, texts


def with_overrides(spec: EmbeddingSpec, args: EncodeArguments) -> EmbeddingSpec:
    """The model's spec with the text flags that were given applied."""
    given = {name: getattr(args, name) for name in ("query_template", "passage_template", "query_prefix",
                                                     "passage_prefix", "append_eos", "query_max_len",
                                                     "passage_max_len")
             if getattr(args, name) is not None}
    return dataclasses.replace(spec, **given)


def main(argv=None):
    args, = make_parser(EncodeArguments, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    model_dir = args.model_name_or_path
    kind = "query" if args.encode_is_query else "passage"
    ids, texts = load_texts(args)  # a missing corpus is named before the model is loaded
    if not texts:
        source = (f"qrels/{args.split}.tsv of {args.data_dir}" if args.encode_is_query
                  else f"shard {args.shard_id} of {args.data_dir}")
        raise ValueError(f"nothing to encode: no {kind} texts in {source}")
    model, tokenizer, spec = load_encoder(model_dir, pooling=args.pooling, normalize=args.normalize,
                                          padding_side=args.padding_side)
    device = device_of(model)
    model = half_weights(model, device, args.bf16, args.fp16)
    spec = with_overrides(spec, args)
    template, max_len = spec.template(kind, args.task), spec.max_len(kind)
    logger.info("encoding %d %s texts (max %d tokens) with %s on %s", len(texts), kind, max_len, model_dir, device)

    poolings = args.poolings.split(",") if args.poolings else [model.pooling_mode]
    by_pooling = encode_texts(model, tokenizer, texts, max_len, args.batch_size, device, args.bf16, args.fp16,
                              desc=f"encode {kind}", poolings=poolings, template=template, append_eos=spec.append_eos)
    for embeddings in by_pooling.values():
        bad = int((~np.isfinite(embeddings).all(axis=1)).sum())
        if bad:
            raise ValueError(f"{model_dir} gave NaN/inf embeddings for {bad} of {len(texts)} texts: its weights are "
                             "broken (a diverged training?); nothing written. Retrain it.")
    model_name = str(Path(model_dir).resolve()) if Path(model_dir).exists() else model_dir
    fingerprint = weights_fingerprint(model_dir)
    outputs = []
    for pooling, embeddings in by_pooling.items():
        meta = {"model": model_name, "weights": fingerprint,
                "dim": int(embeddings.shape[1]), "kind": kind, "max_len": max_len, "template": template,
                "query_template": spec.template("query", args.task),
                "passage_template": spec.template("passage", args.task), "append_eos": spec.append_eos,
                "query_max_len": spec.query_max_len, "passage_max_len": spec.passage_max_len,
                "pooling": pooling, "normalize": model.normalize,
                "shard": [args.shard_id, args.num_shards]}
        output_file = args.output_file.replace("{pooling}", pooling)
        save_embeddings(output_file, embeddings, ids, meta)
        logger.info("wrote %s: %d x %d", output_file, *embeddings.shape)
        outputs.append(output_file)
    return outputs[0] if len(outputs) == 1 else outputs


if __name__ == "__main__":
    sys.exit(run_cli(main))

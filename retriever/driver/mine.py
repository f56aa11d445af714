"""Build Tevatron-layout training groups from a BEIR split, with mined hard negatives.

    python -m retriever.driver.mine --data_dir ../shared/data/scifact --split train \
        --output_file runs/scifact-train.jsonl [--encoder runs/model]

Positives come from the split's qrels (relevance > 0). Negatives are the
top-ranked passages that are not positives, after skipping the first `skip_top`
of them: the very top non-positives are often unjudged positives. The ranking
comes from BM25, or, with --encoder, from a trained dense retriever (round 2:
negatives that fool the round-1 model); `torchrun --nproc_per_node N -m retriever.driver.mine
--encoder ...` encodes the corpus and queries across N processes.

A stronger retriever as a teacher: with --encoder, `--teacher_scores True` writes each passage's
score under it (its similarity, q . p / its temperature) as "score", which `--loss distillation`
trains towards, and `--false_negative_ratio 0.95` drops a negative that scores above 0.95 of the
query's best positive under it: most likely a relevant passage nobody judged.

BM25 returns only the documents sharing a word with the query; when they run out before
`skip_top + n_negatives` non-positives, random other documents (seeded by the query id) fill the group.
"""
import json
import logging
import random
import sys
from dataclasses import dataclass, field
from typing import Optional

from retriever.bm25 import BM25Index
from retriever.text import format_text, join_title
from retriever.data import load_corpus, load_qrels, load_queries
from retriever.io import atomic_write, check_counts
from retriever.driver import make_parser, run_cli, setup_logging

logger = logging.getLogger(__name__)


@dataclass
class MineArguments:
    data_dir: str = field(metadata={"help": "BEIR directory with corpus, queries and qrels."})
    output_file: str = field(metadata={"help": "Training groups (JSONL) written here."})
    split: str = field(default="train", metadata={"help": "Queries and positives come from qrels/<split>.tsv."})
    n_negatives: int = field(default=20, metadata={"help": "Hard negatives kept per query."})
    skip_top: int = field(default=3, metadata={"help": "Non-positives skipped at the top of the ranking."})
    depth: int = field(default=100, metadata={"help": "Results looked at per query."})
    encoder: Optional[str] = field(default=None, metadata={
        "help": "A trained retriever's directory: mine with it instead of BM25."})
    batch_size: int = field(default=32, metadata={"help": "Encoding batch size (with --encoder)."})
    teacher_scores: bool = field(default=False, metadata={
        "help": "With --encoder: give every passage of a group its score under the encoder ('score': q . p / its "
                "temperature), the teacher of --loss distillation."})
    false_negative_ratio: Optional[float] = field(default=None, metadata={
        "help": "With --encoder: drop a negative scoring above this share of the query's best positive under the "
                "encoder (e.g. 0.95): most likely an unjudged positive."})

    def __post_init__(self):
        check_counts(self, "n_negatives", "depth", "batch_size")
        check_counts(self, "skip_top", minimum=0)
        teacher = [f"--{name}" for name in ("teacher_scores", "false_negative_ratio") if getattr(self, name)]
        if teacher and not self.encoder:
            raise ValueError(f"{' and '.join(teacher)} score passages with a teacher: give it as --encoder")
        if self.false_negative_ratio is not None and not 0 < self.false_negative_ratio <= 1:
            raise ValueError(f"--false_negative_ratio must be in (0, 1]; got {self.false_negative_ratio}")


def bm25_ranker(docs: list[dict]):
    index = BM25Index([format_text(d["text"], title=d["title"]) for d in docs])
    return lambda queries, depth: index.search(queries, depth).rows


class DenseRanker:
    """The corpus encoded once with a trained retriever; queries ranked by FAISS inner product, and any
    (query, passage) pair scored as the retriever scores it. Under torchrun every rank encodes its slice of the
    corpus and of the queries, and rank 0 ranks (the others get None)."""

    def __init__(self, docs: list[dict], model_dir: str, batch_size: int):
        from retriever.encoding import load_encoder
        from retriever.searcher import build_index

        self.model, self.tokenizer = load_encoder(model_dir)
        self.batch_size = batch_size
        self.passages = self.embed([join_title(d["text"], d["title"]) for d in docs], "passage")
        self.index = build_index(self.passages) if self.passages is not None else None

    def embed(self, texts: list[str], kind: str):
        from retriever.encoding import encode_gathered

        return encode_gathered(self.model, self.tokenizer, texts, kind, self.batch_size, desc=f"mine: encode {kind}")

    def __call__(self, queries: list[str], depth: int):
        from retriever.searcher import search

        self.queries = self.embed(queries, "query")
        return search(self.index, self.queries, depth).rows if self.index is not None else None

    def scores(self, query: int, rows: list[int]) -> list[float]:
        """The retriever's scores (q . p / its temperature) of query number `query` with these corpus rows."""
        return (self.passages[rows] @ self.queries[query] / self.model.temperature).tolist()


def mine_groups(docs: list[dict], queries: dict, qrels: dict, n_negatives: int, skip_top: int, depth: int,
                ranker=None, teacher_scores: bool = False, false_negative_ratio: Optional[float] = None):
    passages = {d["id"]: {"docid": d["id"], "title": d["title"], "text": d["text"]} for d in docs}
    doc_ids = [d["id"] for d in docs]
    row_of = {doc_id: row for row, doc_id in enumerate(doc_ids)}
    query_ids = [q for q, rels in qrels.items() if q in queries and any(r > 0 for r in rels.values())]
    rows = (ranker or bm25_ranker(docs))([queries[q] for q in query_ids], depth)
    if rows is None:  # under torchrun, a rank other than 0: rank 0 ranks and writes
        return None
    groups, dropped, filled = [], 0, 0
    for i, (query_id, ranked) in enumerate(zip(query_ids, rows)):
        positives = sorted(d for d, r in qrels[query_id].items() if r > 0 and d in passages)
        if not positives:
            continue
        candidates = [doc_ids[j] for j in ranked if j >= 0 and doc_ids[j] not in positives]
        missing = skip_top + n_negatives - len(candidates)
        # the ranking ran out (BM25 matched too few documents): random others, the same on every run
        if missing > 0 and any(j < 0 for j in ranked):
            taken = set(positives) | set(candidates)
            others = [d for d in doc_ids if d not in taken]
            candidates += random.Random(query_id).sample(others, min(missing, len(others)))
            filled += 1
        score = {}
        if teacher_scores or false_negative_ratio:
            ids = positives + candidates
            score = dict(zip(ids, ranker.scores(i, [row_of[d] for d in ids])))
        if false_negative_ratio:  # a negative nearly as good as the best positive is most likely one
            best = max(score[d] for d in positives)
            kept = [d for d in candidates if score[d] <= false_negative_ratio * best]
            dropped += len(candidates) - len(kept)
            candidates = kept

        def passage(doc_id):
            return {**passages[doc_id], "score": score[doc_id]} if teacher_scores else passages[doc_id]
        groups.append({
            "query_id": query_id,
            "query": queries[query_id],
            "positive_passages": [passage(d) for d in positives],
            "negative_passages": [passage(d) for d in candidates[skip_top:skip_top + n_negatives]],
        })
    if filled:
        logger.info("%d of %d queries ranked fewer than %d non-positives: random documents fill their groups",
                    filled, len(groups), skip_top + n_negatives)
    if false_negative_ratio:
        logger.info("dropped %d candidate negatives scoring above %.2f of their query's best positive",
                    dropped, false_negative_ratio)
    return groups


def main(argv=None):
    args, = make_parser(MineArguments, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    if not args.encoder:  # BM25: one process, no torch
        return mine(args)
    from retriever.distributed import inference_group

    with inference_group():
        return mine(args)


def mine(args: MineArguments):
    """The groups file written (with --encoder under torchrun: by rank 0; None on the others)."""
    docs = load_corpus(args.data_dir)
    ranker = DenseRanker(docs, args.encoder, args.batch_size) if args.encoder else bm25_ranker(docs)
    groups = mine_groups(docs, load_queries(args.data_dir), load_qrels(args.data_dir, args.split),
                         args.n_negatives, args.skip_top, args.depth, ranker, args.teacher_scores,
                         args.false_negative_ratio)
    if groups is None:
        return None
    with atomic_write(args.output_file) as f:
        for group in groups:
            f.write(json.dumps(group, ensure_ascii=False) + "\n")
    logger.info("wrote %d training groups to %s", len(groups), args.output_file)
    return args.output_file


if __name__ == "__main__":
    sys.exit(run_cli(main))

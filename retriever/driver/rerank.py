"""Re-rank a search run with a trained cross-encoder; or score training groups as a teacher.

    # retrieve-then-rerank: re-score each query's top-k, write a new run, evaluate it
    python -m retriever.driver.rerank --model_name_or_path runs/reranker \
        --run_file runs/search/run.trec --data_dir ../shared/data/scifact --output_dir runs/reranked

    # teacher scores for distillation: add "score" to every passage of every group
    python -m retriever.driver.rerank --model_name_or_path runs/reranker \
        --train_groups groups.jsonl --output_groups groups.scored.jsonl
"""
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Optional

import torch
from tqdm import tqdm

from retriever.collator import RerankCollator, pad
from retriever.data import load_corpus, load_queries, load_train_groups
from retriever.io import atomic_write, check_counts
from retriever.metrics import read_trec_run
from retriever.modeling.loading import best_device, load_tokenizer
from retriever.modeling.reranker import RerankerModel
from retriever.spec import read_spec
from retriever.driver import make_parser, run_cli, setup_logging
from retriever.encoding import autocast
from retriever.metrics import report

logger = logging.getLogger(__name__)


@dataclass
class RerankArguments:
    model_name_or_path: str = field(metadata={"help": "A re-ranker trained by driver.train_reranker."})
    run_file: Optional[str] = field(default=None, metadata={"help": "TREC run from driver.search."})
    data_dir: Optional[str] = field(default=None, metadata={"help": "BEIR directory: texts and qrels."})
    split: str = field(default="test", metadata={"help": "qrels/<split>.tsv: its queries are re-ranked and evaluated."})
    rerank_depth: int = field(default=100, metadata={"help": "Top passages re-scored per query."})
    output_dir: str = field(default="runs/rerank", metadata={"help": "Writes run.trec and metrics.json here."})
    name: str = field(default="re-ranked", metadata={"help": "System name in the run file and metrics."})
    train_groups: Optional[str] = field(default=None, metadata={"help": "Score these training groups instead."})
    output_groups: Optional[str] = field(default=None, metadata={"help": "Where the scored groups go."})
    batch_size: int = field(default=16, metadata={"help": "(query, passage) pairs scored per forward pass."})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 weights on a GPU (autocast on a CPU)."})
    fp16: bool = field(default=False, metadata={"help": "float16 autocast (GPU)."})

    def __post_init__(self):
        check_counts(self, "rerank_depth", "batch_size")
        if bool(self.train_groups) == bool(self.run_file):
            raise ValueError("give either --run_file (re-rank a run) or --train_groups (teacher scores)")
        if self.train_groups and not self.output_groups:
            raise ValueError("--train_groups needs --output_groups")
        if self.run_file and not self.data_dir:
            raise ValueError("--run_file needs --data_dir (the BEIR directory the run was searched on)")


class PairScorer:
    """Scores (query, passage) pairs in batches with the re-ranker's own text format."""

    def __init__(self, model_dir: str, batch_size: int, bf16: bool = False, fp16: bool = False):
        spec = read_spec(model_dir)
        tokenizer = load_tokenizer(model_dir, spec.padding_side)
        # the collator the re-ranker was trained with: same prefixes, lengths, pair layout
        self.collator = RerankCollator.from_spec(tokenizer, spec)
        self.device = best_device()
        self.model = RerankerModel.load(model_dir, spec).to(self.device).eval()
        self.batch_size, self.bf16, self.fp16 = batch_size, bf16, fp16

    @torch.inference_mode()
    def __call__(self, queries: list[str], passages: list[dict], desc: str = "rerank") -> list[float]:
        """passages: {"text", "title"?} dicts, one per query."""
        ids = self.collator.pair_ids(queries, passages)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))  # similar lengths batch together
        scores = [0.0] * len(ids)
        for start in tqdm(range(0, len(order), self.batch_size), desc=desc, unit="batch"):
            rows = order[start:start + self.batch_size]
            batch = {k: v.to(self.device) for k, v in pad(self.collator.tokenizer, [ids[i] for i in rows]).items()}
            with autocast(self.device, self.bf16, self.fp16):
                out = self.model.score(batch).float().cpu().tolist()
            for i, s in zip(rows, out):
                scores[i] = s
        return scores


def rerank_run(scorer: PairScorer, run: dict, queries: dict, docs: dict, depth: int) -> dict:
    """Top `depth` of each query re-scored; the rest keep their order below them."""
    pairs = [(q, d) for q, ranked in run.items()
             for d in sorted(ranked, key=lambda d: -ranked[d])[:depth]]
    missing = sorted({q for q, _ in pairs if q not in queries}) + sorted({d for _, d in pairs if d not in docs})
    if missing:
        raise FileNotFoundError(f"the run names ids not in the data ({missing[:3]}...): "
                                "give the --data_dir the run was searched on")
    scores = scorer([queries[q] for q, _ in pairs], [docs[d] for _, d in pairs])
    out = {q: {} for q in run}
    for (q, d), s in zip(pairs, scores):
        out[q][d] = s
    for q, ranked in run.items():
        floor = min(out[q].values(), default=0.0)
        tail = sorted((d for d in ranked if d not in out[q]), key=lambda d: -ranked[d])
        for i, d in enumerate(tail, start=1):
            out[q][d] = floor - i  # below every re-scored passage, original order kept
    return out


def score_groups(scorer: PairScorer, groups_file: str, output_file: str) -> None:
    groups = load_train_groups(groups_file)
    items = [(g["query"], p) for g in groups for p in g["positive_passages"] + (g.get("negative_passages") or [])]
    scores = iter(scorer([q for q, _ in items], [p for _, p in items], desc="teacher scores"))
    with atomic_write(output_file) as f:
        for g in groups:
            for p in g["positive_passages"] + (g.get("negative_passages") or []):
                p["score"] = next(scores)
            f.write(json.dumps(g, ensure_ascii=False) + "\n")
    logger.info("wrote %d groups with teacher scores to %s", len(groups), output_file)


def main(argv=None):
    args, = make_parser(RerankArguments, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    scorer = PairScorer(args.model_name_or_path, args.batch_size, args.bf16, args.fp16)
    if args.train_groups:
        score_groups(scorer, args.train_groups, args.output_groups)
        return args.output_groups
    run = read_trec_run(args.run_file)
    docs = {d["id"]: d for d in load_corpus(args.data_dir)}
    logger.info("re-ranking the top %d of %d queries with %s", args.rerank_depth, len(run), args.model_name_or_path)
    reranked = rerank_run(scorer, run, load_queries(args.data_dir), docs, args.rerank_depth)
    return report(reranked, args.data_dir, args.split, args.output_dir, args.name,
                  extra={"rerank_depth": args.rerank_depth}, doc_ids=list(docs))


if __name__ == "__main__":
    sys.exit(run_cli(main))

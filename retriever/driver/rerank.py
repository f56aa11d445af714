"""Re-rank a search run with a trained cross-encoder; or score training groups as a teacher.

    # retrieve-then-rerank: re-score each query's top-k, write a new run, evaluate it
    python -m retriever.driver.rerank --model_name_or_path runs/reranker \
        --run_file runs/search/run.trec --data_dir ../shared/data/scifact --output_dir runs/reranked

    # teacher scores for distillation: add "score" to every passage of every group
    python -m retriever.driver.rerank --model_name_or_path runs/reranker \
        --train_groups groups.jsonl --output_groups groups.scored.jsonl
"""
import logging
import sys
from dataclasses import dataclass, field
from typing import Optional

from retriever.data import load_corpus, load_queries
from retriever.driver import make_parser, run_cli, setup_logging
from retriever.io import check_counts
from retriever.metrics import read_trec_run, report
from retriever.reranking import PairScorer, rerank_run, score_groups

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

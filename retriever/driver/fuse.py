"""Fuse two (or more) TREC run files into a hybrid run, and evaluate it.

    python -m retriever.driver.fuse --runs runs/bm25/run.trec runs/dense/run.trec \
        --qrels ../shared/data/scifact --output_dir runs/hybrid [--method minmax | --method rrf --rrf_k 60]

Min-max-normalised score fusion by default, reciprocal-rank fusion with
--method rrf (retriever.fusion says how each works and when rank fusion falls short).
"""
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from retriever.fusion import FUSION_METHODS, fuse
from retriever.io import DataError, check_counts
from retriever.metrics import read_trec_run, report
from retriever.driver import make_parser, run_cli, setup_logging

logger = logging.getLogger(__name__)


@dataclass
class FuseArguments:
    runs: list[str] = field(metadata={"help": "Two or more TREC run files (e.g. BM25 and dense)."})
    output_dir: str = field(default="runs/hybrid", metadata={"help": "Writes run.trec and metrics.json here."})
    method: str = field(default="minmax", metadata={"help": f"One of {FUSION_METHODS}."})
    rrf_k: float = field(default=60.0, metadata={"help": "rrf: score = sum 1 / (k + rank)."})
    depth: int = field(default=100, metadata={"help": "Documents kept per query."})
    qrels: Optional[str] = field(default=None, metadata={
        "help": "BEIR directory or qrels TSV; the fused run is evaluated when given."})
    split: str = field(default="test", metadata={"help": "qrels/<split>.tsv to evaluate against."})
    name: str = field(default="hybrid", metadata={"help": "System name in the run file and metrics."})
    allow_different_queries: bool = field(default=False, metadata={
        "help": "Fuse runs that cover different queries (a query then gets the runs it is in); "
                "without it that is an error."})

    def __post_init__(self):
        if len(self.runs) < 2:
            raise ValueError(f"--runs needs at least two run files; got {len(self.runs)}")
        if self.method not in FUSION_METHODS:
            raise ValueError(f"--method must be one of {', '.join(FUSION_METHODS)}; got '{self.method}'")
        check_counts(self, "depth")
        if self.rrf_k <= 0:
            raise ValueError(f"--rrf_k must be > 0; got {self.rrf_k}")


def main(argv=None):
    args, = make_parser(FuseArguments, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    for i, path in enumerate(args.runs):
        same = next((other for other in args.runs[:i] if Path(other).resolve() == Path(path).resolve()), None)
        if same is not None:
            raise ValueError(f"--runs gives {path} twice ({same}): fusing a run with itself is not a hybrid; "
                             "give two different runs")
    runs = [read_trec_run(path) for path in args.runs]
    for i, run in enumerate(runs):
        same = next((args.runs[j] for j in range(i) if runs[j] == run), None)
        if same is not None:
            raise DataError(f"{args.runs[i]} and {same} hold the same ranking, score for score: fusing a run with "
                            "itself is not a hybrid; give runs of two different systems")
    for path, run in zip(args.runs[1:], runs[1:]):
        only_first, only_this = set(runs[0]) - set(run), set(run) - set(runs[0])
        if (only_first or only_this) and not args.allow_different_queries:
            example = sorted(only_first or only_this)[0]
            raise DataError(f"{args.runs[0]} and {path} cover different queries ({len(only_first)} only in the first, "
                            f"{len(only_this)} only in the second, e.g. '{example}'): fuse runs of the same queries, "
                            "or pass --allow_different_queries True (a BM25 run leaves out a query "
                            "that shares no word with any document)")
    fused = fuse(runs, args.method, args.rrf_k, args.depth)
    logger.info("fused %d runs (%s) over %d queries", len(runs), args.method, len(fused))
    return report(fused, args.qrels, args.split, args.output_dir, args.name,
                  extra={"fusion": args.method, "fused_runs": args.runs})


if __name__ == "__main__":
    sys.exit(run_cli(main))

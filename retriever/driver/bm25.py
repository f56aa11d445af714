"""BM25 baseline on a BEIR split: run file, metrics, timing.

    python -m retriever.driver.bm25 --data_dir ../shared/data/scifact --output_dir runs/bm25
"""
import logging
import sys
import time
from dataclasses import dataclass, field


from retriever.bm25 import BM25Index
from retriever.text import format_text
from retriever.data import load_corpus, load_qrels, load_queries
from retriever.io import check_counts
from retriever.metrics import report, to_run
from retriever.driver import make_parser, run_cli, setup_logging

logger = logging.getLogger(__name__)


@dataclass
class BM25Arguments:
    data_dir: str = field(default="BeIR/fiqa", metadata={"help": "BEIR directory or hub name."})
    corpus_file: str = field(default=None, metadata={"help": "Corpus JSONL overriding data_dir's."})
    split: str = field(default="test", metadata={"help": "Queries of qrels/<split>.tsv are searched."})
    depth: int = field(default=100, metadata={"help": "Documents retrieved per query."})
    output_dir: str = field(default="runs/bm25", metadata={"help": "Writes run.trec and metrics.json here."})
    name: str = field(default="BM25", metadata={"help": "System name in the run file and metrics."})

    def __post_init__(self):
        check_counts(self, "depth")


def main(argv=None):
    args, = make_parser(BM25Arguments, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    start = time.perf_counter()
    docs = load_corpus(args.data_dir, args.corpus_file)
    queries = load_queries(args.data_dir)
    query_ids = [q for q in load_qrels(args.data_dir, args.split) if q in queries]
    index = BM25Index([format_text(d["text"], title=d["title"]) for d in docs])
    scores, rows = index.search([queries[q] for q in query_ids], args.depth)
    doc_ids = [d["id"] for d in docs]
    run = to_run(query_ids, doc_ids, scores, rows)
    if len(run) < len(query_ids):
        logger.info("%d of %d queries share no word with any document: BM25 retrieves nothing for them (they score 0)",
                    len(query_ids) - len(run), len(query_ids))
    seconds = round(time.perf_counter() - start, 1)
    return report(run, args.data_dir, args.split, args.output_dir, args.name, {"seconds": seconds},
                  doc_ids=doc_ids)


if __name__ == "__main__":
    sys.exit(run_cli(main))

"""Build Tevatron-layout training groups from a BEIR split, with BM25 hard negatives.

    python -m retriever.driver.mine --data_dir ../shared/data/scifact --split train \
        --output_file runs/scifact-train.jsonl

Positives come from the split's qrels (relevance > 0). Negatives are the
top-ranked BM25 passages that are not positives, after skipping the first
`skip_top` of them: the very top non-positives are often unjudged positives.
"""
import json
import logging
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from retriever.bm25 import BM25Index
from retriever.collator import format_text
from retriever.data import load_corpus, load_qrels, load_queries
from retriever.io import atomic_write
from retriever.driver import run_cli, setup_logging

logger = logging.getLogger(__name__)


@dataclass
class MineArguments:
    data_dir: str = field(metadata={"help": "BEIR directory with corpus, queries and qrels."})
    output_file: str = field(metadata={"help": "Training groups (JSONL) written here."})
    split: str = field(default="train")
    n_negatives: int = field(default=20, metadata={"help": "Hard negatives kept per query."})
    skip_top: int = field(default=3, metadata={"help": "Non-positives skipped at the top of the ranking."})
    depth: int = field(default=100, metadata={"help": "BM25 results looked at per query."})


def mine_groups(docs: list[dict], queries: dict, qrels: dict, n_negatives: int, skip_top: int, depth: int):
    passages = {d["id"]: {"docid": d["id"], "title": d["title"], "text": d["text"]} for d in docs}
    doc_ids = [d["id"] for d in docs]
    query_ids = [q for q, rels in qrels.items() if q in queries and any(r > 0 for r in rels.values())]
    index = BM25Index([format_text(d["text"], title=d["title"]) for d in docs])
    rows, _ = index.search([queries[q] for q in query_ids], depth)
    groups = []
    for query_id, ranked in zip(query_ids, rows):
        positives = {d for d, r in qrels[query_id].items() if r > 0 and d in passages}
        if not positives:
            continue
        candidates = [doc_ids[j] for j in ranked if doc_ids[j] not in positives]
        groups.append({
            "query_id": query_id,
            "query": queries[query_id],
            "positive_passages": [passages[d] for d in sorted(positives)],
            "negative_passages": [passages[d] for d in candidates[skip_top:skip_top + n_negatives]],
        })
    return groups


def main(argv=None):
    args, = HfArgumentParser(MineArguments).parse_args_into_dataclasses(args=argv)
    setup_logging()
    groups = mine_groups(load_corpus(args.data_dir), load_queries(args.data_dir),
                         load_qrels(args.data_dir, args.split), args.n_negatives, args.skip_top, args.depth)
    with atomic_write(args.output_file) as f:
        for group in groups:
            f.write(json.dumps(group, ensure_ascii=False) + "\n")
    logger.info("wrote %d training groups to %s", len(groups), args.output_file)
    return args.output_file


if __name__ == "__main__":
    sys.exit(run_cli(main))

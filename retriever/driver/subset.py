"""Write a smaller BEIR directory: the documents judged for a split, plus random distractors.

    python -m retriever.driver.subset --data_dir ../shared/data/scifact --n_docs 800 \
        --output_dir runs/demo/scifact-800 [--n_queries 50]

Used by the CPU demo, where encoding a whole corpus does not fit the time budget.
All systems (BM25, zero-shot, fine-tuned) are scored on the same subset, so they
compare fairly; absolute numbers are higher than on the full corpus.

--n_queries keeps a random sample of the split's queries. When their judged
documents alone outnumber --n_docs (NFCorpus judges ~38 per query), a random
n_docs of them are kept and the qrels are restricted to those: the subset then
asks "rank these judged documents", still the same question for every system.
"""
import json
import logging
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path


from retriever.data import beir_file, load_corpus, load_qrels
from retriever.io import atomic_write, check_counts
from retriever.driver import make_parser, run_cli, setup_logging

logger = logging.getLogger(__name__)


@dataclass
class SubsetArguments:
    data_dir: str = field(metadata={"help": "Source BEIR directory."})
    output_dir: str = field(metadata={"help": "New BEIR directory."})
    split: str = field(default="test", metadata={"help": "qrels/<split>.tsv: its judged documents are kept."})
    n_docs: int = field(default=800, metadata={"help": "Corpus size: judged docs + random others. 0 = all."})
    n_queries: int = field(default=0, metadata={"help": "Keep a random sample of this many queries. 0 = all."})
    seed: int = field(default=13, metadata={"help": "Seed of the random queries and distractors."})

    def __post_init__(self):
        check_counts(self, "n_docs", "n_queries", minimum=0)


def choose_queries(qrels: dict, n_queries: int, seed: int) -> dict:
    if not n_queries or n_queries >= len(qrels):
        return qrels
    keep = random.Random(seed).sample(sorted(qrels), n_queries)
    return {q: qrels[q] for q in sorted(keep)}


def choose_docs(doc_ids: list[str], qrels: dict, n_docs: int, seed: int) -> set[str]:
    rng = random.Random(seed)
    judged = sorted({d for rels in qrels.values() for d in rels} & set(doc_ids))
    if n_docs and len(judged) > n_docs:
        logger.warning("%d judged documents exceed --n_docs %d: keeping a random %d of them",
                       len(judged), n_docs, n_docs)
        judged = rng.sample(judged, n_docs)
    others = sorted(set(doc_ids) - set(judged))
    n_extra = max(0, n_docs - len(judged)) if n_docs else len(others)
    return set(judged) | set(rng.sample(others, min(n_extra, len(others))))


def restrict_qrels(qrels: dict, keep: set[str]) -> dict:
    """Judgements of kept documents only; queries left with no relevant document are dropped."""
    out = {q: {d: s for d, s in rels.items() if d in keep} for q, rels in qrels.items()}
    return {q: rels for q, rels in out.items() if any(s > 0 for s in rels.values())}


def main(argv=None):
    args, = make_parser(SubsetArguments, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    docs = load_corpus(args.data_dir)
    qrels = choose_queries(load_qrels(args.data_dir, args.split), args.n_queries, args.seed)
    keep = choose_docs([d["id"] for d in docs], qrels, args.n_docs, args.seed)
    qrels = restrict_qrels(qrels, keep)
    out = Path(args.output_dir)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "corpus.jsonl") as f:
        for d in docs:
            if d["id"] in keep:
                f.write(json.dumps({"_id": d["id"], "title": d["title"], "text": d["text"]}, ensure_ascii=False) + "\n")
    shutil.copyfile(beir_file(args.data_dir, "queries.jsonl"), out / "queries.jsonl")
    with atomic_write(out / "qrels" / f"{args.split}.tsv") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        f.writelines(f"{q}\t{d}\t{s}\n" for q, rels in qrels.items() for d, s in rels.items())
    logger.info("wrote %s: %d of %d documents, %d judged queries", out, len(keep), len(docs), len(qrels))
    return out


if __name__ == "__main__":
    sys.exit(run_cli(main))

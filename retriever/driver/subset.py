"""Write a smaller BEIR directory: every document judged for a split, plus random distractors.

    python -m retriever.driver.subset --data_dir ../shared/data/scifact --n_docs 800 \
        --output_dir runs/demo/scifact-800

Used by the CPU demo, where encoding a whole corpus does not fit the time budget.
All systems (BM25, zero-shot, fine-tuned) are scored on the same subset, so they
compare fairly; absolute numbers are higher than on the full corpus.
"""
import json
import logging
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from retriever.data import beir_file, load_corpus, load_qrels
from retriever.io import atomic_write
from retriever.driver import run_cli, setup_logging

logger = logging.getLogger(__name__)


@dataclass
class SubsetArguments:
    data_dir: str = field(metadata={"help": "Source BEIR directory."})
    output_dir: str = field(metadata={"help": "New BEIR directory."})
    split: str = field(default="test")
    n_docs: int = field(default=800, metadata={"help": "Corpus size: judged docs + random others. 0 = all."})
    seed: int = field(default=13)


def choose_docs(doc_ids: list[str], qrels: dict, n_docs: int, seed: int) -> set[str]:
    judged = {d for rels in qrels.values() for d in rels} & set(doc_ids)
    others = sorted(set(doc_ids) - judged)
    n_extra = max(0, n_docs - len(judged)) if n_docs else len(others)
    return judged | set(random.Random(seed).sample(others, min(n_extra, len(others))))


def main(argv=None):
    args, = HfArgumentParser(SubsetArguments).parse_args_into_dataclasses(args=argv)
    setup_logging()
    docs = load_corpus(args.data_dir)
    keep = choose_docs([d["id"] for d in docs], load_qrels(args.data_dir, args.split), args.n_docs, args.seed)
    out = Path(args.output_dir)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "corpus.jsonl") as f:
        for d in docs:
            if d["id"] in keep:
                f.write(json.dumps({"_id": d["id"], "title": d["title"], "text": d["text"]}, ensure_ascii=False) + "\n")
    shutil.copyfile(beir_file(args.data_dir, "queries.jsonl"), out / "queries.jsonl")
    shutil.copyfile(beir_file(args.data_dir, f"qrels/{args.split}.tsv"), out / "qrels" / f"{args.split}.tsv")
    logger.info("wrote %s: %d of %d documents", out, len(keep), len(docs))
    return out


if __name__ == "__main__":
    sys.exit(run_cli(main))

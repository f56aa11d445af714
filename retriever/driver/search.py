"""Search corpus embeddings with FAISS, write a TREC run, evaluate it against qrels.

    python -m retriever.driver.search --query_embeddings runs/emb/queries.npz \
        --corpus_embeddings 'runs/emb/corpus*.npz' --qrels ../shared/data/scifact --output_dir runs/search
"""
import logging
import sys
from pathlib import Path

from retriever.arguments import SearchArguments
from retriever.io import DataError
from retriever.metrics import report, to_run
from retriever.data import load_corpus
from retriever.searcher import check_compatible, index_and_search, load_corpus_shards, load_embeddings
from retriever.driver import make_parser, run_cli, setup_logging

logger = logging.getLogger(__name__)


def main(argv=None):
    args, = make_parser(SearchArguments, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    q_emb, q_ids, q_meta = load_embeddings(args.query_embeddings)
    if q_meta.get("kind") != "query":
        raise DataError(f"{args.query_embeddings} holds {q_meta.get('kind')} embeddings, not queries: are the "
                        "query and corpus files swapped?")
    p_emb, p_ids, p_meta = load_corpus_shards(args.corpus_embeddings)
    check_compatible(q_meta, p_meta, args.query_embeddings, args.corpus_embeddings)
    docs = None
    if args.save_index:  # the texts the index shows, checked before any work
        source = args.corpus or (args.qrels if args.qrels and Path(args.qrels).is_dir() else None)
        if source is None or not Path(source).exists():
            raise ValueError("--save_index needs the corpus texts: give --corpus BEIR_DIR (or corpus.jsonl)")
        docs = load_corpus(source) if Path(source).is_dir() else load_corpus("", corpus_file=source)
    logger.info("searching %d queries over %d passages (%s index, depth %d)",
                len(q_ids), len(p_ids), args.index_type, args.depth)
    index_dir = Path(args.output_dir) / "index" if args.save_index else None
    scores, rows = index_and_search(p_emb, q_emb, args, args.batch_size, index_dir, p_ids, p_meta,
                                    docs and {d["id"]: d for d in docs})
    metrics = report(to_run(q_ids, p_ids, scores, rows), args.qrels, args.split, args.output_dir, args.name,
                     doc_ids=p_ids)
    logger.info("wrote %s", Path(args.output_dir) / "run.trec")
    if index_dir:
        logger.info("saved the index to %s (python -m retriever.driver.query searches it)", index_dir)
    return metrics


if __name__ == "__main__":
    sys.exit(run_cli(main))

"""Retrieval quality of a model while it trains: MRR@10 and nDCG@10 on a small dev set.

`train --eval_data_dir DIR --eval_steps N` encodes DIR's corpus and its split's
judged queries with the model being trained every N steps (and before and after
training), searches exactly and scores the run with `retriever.metrics`. Keep the
set small (a few hundred documents): make one with `retriever.driver.subset`.
"""
import logging
from dataclasses import dataclass

from retriever.data import load_corpus, load_qrels, load_queries
from retriever.encoding import encode_as_trained
from retriever.metrics import evaluate, to_run
from retriever.searcher import build_index, search
from retriever.text import join_title

logger = logging.getLogger(__name__)
DEV_MEASURES = ("MRR@10", "nDCG@10")


@dataclass
class DevSet:
    query_ids: list[str]
    queries: list[str]
    doc_ids: list[str]
    docs: list[str]  # title + text
    qrels: dict

    @classmethod
    def load(cls, data_dir: str, split: str) -> "DevSet":
        """The judged queries of `split` and the whole corpus of a BEIR directory."""
        try:
            corpus, qrels, queries = load_corpus(data_dir), load_qrels(data_dir, split), load_queries(data_dir)
        except FileNotFoundError as e:  # the loaders' advice names --data_dir: say which flag it is here
            raise FileNotFoundError(f"--eval_data_dir {data_dir} --eval_split {split}: {e}") from None
        query_ids = [q for q in qrels if q in queries and any(r > 0 for r in qrels[q].values())]
        if not corpus or not query_ids:
            raise ValueError(f"--eval_data_dir {data_dir}: no documents or no judged queries of split '{split}'")
        doc_ids = {d["id"] for d in corpus}
        judged = {d for q in query_ids for d, r in qrels[q].items() if r > 0}
        absent = judged - doc_ids
        if absent == judged:  # every metric would be 0.0 at every step
            raise ValueError(f"--eval_data_dir {data_dir}: none of the {len(judged)} documents that qrels/{split}.tsv "
                             f"judges relevant is in its corpus.jsonl (e.g. '{sorted(absent)[0]}'): a subset "
                             f"made without --split {split}, or qrels of another corpus?")
        if absent:
            logger.warning("--eval_data_dir %s: %d of %d relevant documents of qrels/%s.tsv are not in its corpus "
                           "(e.g. '%s'): they count as misses", data_dir, len(absent), len(judged), split,
                           sorted(absent)[0])
        return cls(query_ids, [queries[q] for q in query_ids],
                   [d["id"] for d in corpus], [join_title(d["text"], d["title"]) for d in corpus],
                   {q: qrels[q] for q in query_ids})


def evaluate_retriever(model, tokenizer, dev: DevSet, batch_size: int, reading=None) -> dict[str, float]:
    """{"MRR@10", "nDCG@10"} of the model on the dev set; the model is left in the mode it was in. `reading`:
    the spec that shapes the dev texts, when not the model's own (training's, which may cut passages shorter
    than the saved model reads them: the dev set then watches what training sees, at training's cost)."""
    was_training = model.training
    model.eval()
    try:
        def embed(texts, kind):
            return encode_as_trained(model, tokenizer, texts, kind, batch_size, desc=f"dev set: {kind} texts",
                                     reading=reading)

        index = build_index(embed(dev.docs, "passage"))
        scores, rows = search(index, embed(dev.queries, "query"), depth=100)
    finally:
        model.train(was_training)
    metrics = evaluate(dev.qrels, to_run(dev.query_ids, dev.doc_ids, scores, rows))
    return {name: metrics[name] for name in DEV_MEASURES}

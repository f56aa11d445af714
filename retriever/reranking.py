"""Re-ranking with a trained cross-encoder (modeling/reranker.py): score (query, passage) pairs,
re-rank the top of a search run, or write teacher scores into training groups for distillation.
The library behind driver.rerank.
"""
import json
import logging

import torch
from tqdm import tqdm

from retriever.collator import RerankCollator, pad
from retriever.data import load_train_groups
from retriever.encoding import autocast
from retriever.io import atomic_write
from retriever.modeling.loading import best_device, load_tokenizer
from retriever.modeling.reranker import RerankerModel
from retriever.spec import read_reranker_spec

logger = logging.getLogger(__name__)


class PairScorer:
    """Scores (query, passage) pairs in batches with the re-ranker's own text format."""

    def __init__(self, model_dir: str, batch_size: int, bf16: bool = False, fp16: bool = False):
        spec = read_reranker_spec(model_dir)
        tokenizer = load_tokenizer(model_dir)
        # the collator the re-ranker was trained with: same prefixes, lengths, pair layout
        self.collator = RerankCollator(tokenizer, spec)
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

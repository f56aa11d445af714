"""Training losses as small objects: the model encodes, the loss scores.

A loss is called as `loss(model, q_reps, p_reps, teacher_scores)` on the retriever's
embeddings (or `loss(model, group_scores)` on the re-ranker's pair scores) and returns
`(loss, scores)`. `--loss NAME` picks one from `LOSSES`; GradCache
(retriever.grad_cache) and cross-device negatives (`CrossDeviceNegatives`) wrap any of
the retriever's. Adding a loss is one class and one `LOSSES` entry here, and one test
(tests/modeling/test_loss.py).

Label layout (the one rule every retriever loss relies on): passages arrive grouped by
query, `group_size = n_passages // n_queries` per query, positive first. So the
positive of query i is passage column `i * group_size`; every other column of the
batch (the query's own hard negatives and all other queries' passages) is a negative.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from retriever.distributed import gather, gather_with_grad, world_size


class ContrastiveLoss:
    """In-batch contrastive loss (the default): the course's graded `compute_similarity`,
    `compute_labels` and `compute_loss` of the model, at the spec's temperature."""

    def __call__(self, model, q_reps: torch.Tensor, p_reps: torch.Tensor,
                 teacher_scores: Optional[torch.Tensor] = None):
        scores = model.compute_similarity(q_reps, p_reps, model.temperature)  # (n_queries, n_passages)
        labels = model.compute_labels(q_reps.size(0), p_reps.size(0)).to(scores.device)
        return model.compute_loss(scores, labels), scores


class SymmetricContrastiveLoss(ContrastiveLoss):
    """The contrastive loss both ways, averaged: each query picks its positive among the batch's
    passages (the graded loss above), and each positive picks its query among the batch's queries
    (as CLIP's loss does); the second term costs no encoding, only the scores already computed."""

    def __call__(self, model, q_reps, p_reps, teacher_scores=None):
        loss, scores = super().__call__(model, q_reps, p_reps)
        positives = model.compute_labels(q_reps.size(0), p_reps.size(0)).to(scores.device)
        # (n_queries, n_queries): row j holds positive j's scores against every query; its own is column j
        by_passage = scores[:, positives].T
        own = torch.arange(q_reps.size(0), device=scores.device)
        return (loss + model.compute_loss(by_passage, own)) / 2, scores


class DistillationLoss(ContrastiveLoss):
    """Contrastive + weight · KL(softmax(teacher / T) ‖ softmax(student)) over each query's own
    group, for batches whose passages all carry a teacher "score" (driver.rerank --train_groups
    writes them); other batches get the contrastive loss alone."""

    def __init__(self, weight: float = 1.0, teacher_temperature: float = 1.0):
        if weight <= 0 or teacher_temperature <= 0:
            raise ValueError("--distill_weight and --teacher_temperature must be > 0 with --loss distillation")
        self.weight, self.teacher_temperature = weight, teacher_temperature

    def __call__(self, model, q_reps, p_reps, teacher_scores=None):
        loss, scores = super().__call__(model, q_reps, p_reps)
        if teacher_scores is not None:
            student = own_group_scores(q_reps, p_reps, model.temperature)  # (n_queries, group_size)
            loss = loss + self.weight * distillation_loss(student, teacher_scores, self.teacher_temperature)
        return loss, scores


class ListwiseLoss:
    """The re-ranker's loss: softmax cross-entropy over each query's own group of pair scores
    (n_queries, group_size), positive in column 0."""

    def __call__(self, model, group_scores: torch.Tensor):
        return listwise_loss(group_scores), group_scores


class CrossDeviceNegatives:
    """Wraps a retriever loss under torchrun: queries, passages (and teacher scores) of every rank
    are gathered first, so each query meets every device's passages; the loss is multiplied by
    the world size to undo DDP's gradient averaging (retriever.distributed), and `scale` says by
    how much, so the trainer logs the true loss."""

    def __init__(self, inner):
        self.inner = inner

    @property
    def scale(self) -> int:
        return world_size()

    def __call__(self, model, q_reps, p_reps, teacher_scores=None):
        teacher = gather(teacher_scores) if teacher_scores is not None else None
        loss, scores = self.inner(model, gather_with_grad(q_reps), gather_with_grad(p_reps), teacher)
        return loss * self.scale, scores


# --loss NAME -> (the model it trains, how it is built from the training arguments)
LOSSES = {
    "contrastive": ("retriever", lambda args: ContrastiveLoss()),
    "symmetric": ("retriever", lambda args: SymmetricContrastiveLoss()),
    "distillation": ("retriever", lambda args: DistillationLoss(
        1.0 if args.distill_weight is None else args.distill_weight,
        1.0 if args.teacher_temperature is None else args.teacher_temperature)),
    "listwise": ("reranker", lambda args: ListwiseLoss()),
}


def build_loss(name: str, training_args, model_kind: str):
    """The loss --loss names, for a "retriever" or a "reranker", wrapped for cross-device
    negatives when asked."""
    if name not in LOSSES:
        raise ValueError(f"--loss must be one of {', '.join(LOSSES)}; got '{name}'")
    kind, build = LOSSES[name]
    if kind != model_kind:
        usable = " or ".join(n for n, (k, _) in LOSSES.items() if k == model_kind)
        raise ValueError(f"--loss {name} trains a {kind}, not a {model_kind}; use {usable}")
    loss = build(training_args)
    if training_args.negatives_cross_device:
        loss = CrossDeviceNegatives(loss)
    return loss


# ---- the maths ---------------------------------------------------------------------
def listwise_loss(group_scores: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy over each row of (n_queries, group_size) scores, positive in column 0."""
    labels = torch.zeros(group_scores.size(0), dtype=torch.long, device=group_scores.device)
    return F.cross_entropy(group_scores.float(), labels)


def distillation_loss(student_scores: torch.Tensor, teacher_scores: torch.Tensor,
                      teacher_temperature: float = 1.0) -> torch.Tensor:
    """KL(teacher || student) between softmax distributions over each query's passages.

    student_scores: (n_queries, k) log-space scores (already temperature-scaled);
    teacher_scores: (n_queries, k) raw teacher scores, softened by teacher_temperature.
    """
    teacher = F.softmax(teacher_scores.float() / teacher_temperature, dim=-1)
    return F.kl_div(F.log_softmax(student_scores.float(), dim=-1), teacher, reduction="batchmean")


def own_group_scores(q_reps: torch.Tensor, p_reps: torch.Tensor, temperature: float) -> torch.Tensor:
    """Each query against its own group only: (n_queries, group_size), positive first."""
    groups = p_reps.view(q_reps.size(0), -1, p_reps.size(-1))  # (n_queries, group_size, dim)
    return torch.einsum("qd,qgd->qg", q_reps, groups) / temperature

"""Loss terms beyond the course's contrastive loss, as pure functions of scores or embeddings.

The contrastive loss itself (similarity, labels, cross-entropy) is the course's graded
contract and lives in `EncoderModel` (modeling/encoder.py); the model's `loss_from_reps`,
which the trainer and GradCache both call, adds these terms to it.

Label layout (the one rule every caller relies on): passages arrive grouped by
query, `group_size = n_passages // n_queries` per query, positive first. So the
positive of query i is passage column `i * group_size`; every other column of the
batch (the query's own hard negatives and all other queries' passages) is a
negative for it.
"""
import torch
import torch.nn.functional as F


def listwise_loss(group_scores: torch.Tensor) -> torch.Tensor:
    """Re-ranker loss: softmax cross-entropy over each query's own group, positive in column 0.

    group_scores: (n_queries, group_size) scores of (query, passage) pairs.
    """
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

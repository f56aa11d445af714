"""The losses: each one's maths on hand-checked numbers, and --loss choosing among them."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from retriever.modeling.encoder import EncoderModel
from retriever.modeling.loading import load_base_model
from retriever.modeling.loss import (LOSSES, ContrastiveLoss, CrossDeviceNegatives, DistillationLoss, ListwiseLoss,
                                     SymmetricContrastiveLoss, build_loss, distillation_loss, listwise_loss, own_group_scores)
from retriever.spec import EmbeddingSpec


def training_args(**given):
    return SimpleNamespace(**{"negatives_cross_device": False, "distill_weight": None, "teacher_temperature": None,
                              **given})


def test_contrastive_loss_is_cross_entropy_over_the_batch_at_the_spec_temperature(tiny_model_dir):
    model = EncoderModel(load_base_model(tiny_model_dir), spec=EmbeddingSpec(temperature=0.05))
    q, p = F.normalize(torch.randn(2, 8), dim=-1), F.normalize(torch.randn(4, 8), dim=-1)
    loss, scores = ContrastiveLoss()(model, q, p)
    torch.testing.assert_close(scores, q @ p.T / 0.05)
    torch.testing.assert_close(loss, F.cross_entropy(q @ p.T / 0.05, torch.tensor([0, 2])))


def test_symmetric_loss_adds_each_positive_choosing_its_query_on_a_hand_computed_example(tiny_model_dir):
    # temperature 1, queries [1,0] and [0,1], both positives [1,0]: scores [[1, 1], [0, 0]]
    # queries -> passages: each row [1,1] or [0,0] -> ln 2
    # positives -> queries: rows [1, 0] (target 0) and [1, 0] (target 1): ln(1 + 1/e) and ln(1 + e), mean ln(1 + e) - 1/2
    model = EncoderModel(load_base_model(tiny_model_dir), spec=EmbeddingSpec(temperature=1.0), loss=SymmetricContrastiveLoss())
    q, p = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    loss, scores = model.loss(model, q, p)
    assert loss.item() == pytest.approx((math.log(2) + math.log(1 + math.e) - 0.5) / 2, rel=1e-6)
    torch.testing.assert_close(scores, q @ p.T)


def test_symmetric_loss_reads_only_the_positive_columns_of_groups(tiny_model_dir):
    model = EncoderModel(load_base_model(tiny_model_dir), spec=EmbeddingSpec(temperature=0.05))
    q, p = F.normalize(torch.randn(3, 8), dim=-1), F.normalize(torch.randn(6, 8), dim=-1)  # groups of 2
    loss, _ = SymmetricContrastiveLoss()(model, q, p)
    scores = q @ p.T / 0.05
    by_passage = torch.stack([scores[:, 2 * j] for j in range(3)])  # positive j against the three queries
    expected = (F.cross_entropy(scores, torch.tensor([0, 2, 4])) + F.cross_entropy(by_passage, torch.arange(3))) / 2
    torch.testing.assert_close(loss, expected)


def test_distillation_adds_weighted_kl_to_the_contrastive_loss(tiny_model_dir):
    model = EncoderModel(load_base_model(tiny_model_dir), spec=EmbeddingSpec(temperature=0.05),
                         loss=DistillationLoss(weight=0.5, teacher_temperature=2.0))
    q, p = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1), torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    teacher = torch.randn(2, 3)
    loss, _ = model.loss(model, q, p, teacher)
    contrastive = torch.nn.functional.cross_entropy(q @ p.T / 0.05, torch.tensor([0, 3]))  # groups of 3
    expected = contrastive + 0.5 * distillation_loss(own_group_scores(q, p, 0.05), teacher, 2.0)
    torch.testing.assert_close(loss, expected)
    assert own_group_scores(q, p, 1.0)[1, 2] == pytest.approx(float(q[1] @ p[5]))
    torch.testing.assert_close(model.loss(model, q, p)[0], contrastive)  # a batch without teacher scores


def test_distillation_loss_on_a_hand_computed_example(tiny_model_dir):
    # student scores [0, ln 3] -> softmax [1/4, 3/4]; teacher [0, 0] -> [1/2, 1/2]
    # KL(teacher || student) = 1/2 ln(2) + 1/2 ln(2/3) = 1/2 ln(4/3)
    student, teacher = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[0.0, 0.0]])
    assert distillation_loss(student, teacher, 1.0).item() == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)
    # teacher [2, 0] at temperature 2 -> softmax [e/(e+1), 1/(e+1)]
    t = [math.e / (math.e + 1), 1 / (math.e + 1)]
    kl = t[0] * math.log(t[0] / 0.25) + t[1] * math.log(t[1] / 0.75)
    assert distillation_loss(student, torch.tensor([[2.0, 0.0]]), 2.0).item() == pytest.approx(kl, rel=1e-6)
    # through the model: one query, its group [p0, p1], temperature 1, weight 0.5
    model = EncoderModel(load_base_model(tiny_model_dir), spec=EmbeddingSpec(temperature=1.0), loss=DistillationLoss(weight=0.5))
    q, p = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0], [math.log(3.0), 0.0]])  # scores [0, ln 3]
    loss, _ = model.loss(model, q, p, teacher)
    contrastive = math.log(1 + 3)  # -log softmax(...)[0] = -log(1/4)
    assert loss.item() == pytest.approx(contrastive + 0.5 * 0.5 * math.log(4 / 3), rel=1e-6)


def test_listwise_loss_is_cross_entropy_with_the_positive_in_column_zero():
    scores = torch.randn(3, 4)
    torch.testing.assert_close(listwise_loss(scores), F.cross_entropy(scores, torch.zeros(3, dtype=torch.long)))


def test_distillation_loss_is_zero_when_student_matches_teacher_and_positive_otherwise():
    teacher = torch.randn(2, 5)
    assert distillation_loss(teacher / 2, teacher, teacher_temperature=2.0).abs() < 1e-6
    assert distillation_loss(torch.zeros(2, 5), teacher) > 0


def test_loss_flag_picks_the_loss_and_refuses_one_of_the_other_model():
    assert isinstance(build_loss("contrastive", training_args(), "retriever"), ContrastiveLoss)
    assert isinstance(build_loss("symmetric", training_args(), "retriever"), SymmetricContrastiveLoss)
    distill = build_loss("distillation", training_args(distill_weight=0.3), "retriever")
    assert isinstance(distill, DistillationLoss) and (distill.weight, distill.teacher_temperature) == (0.3, 1.0)
    assert isinstance(build_loss("listwise", training_args(), "reranker"), ListwiseLoss)
    with pytest.raises(ValueError, match="--loss listwise trains a reranker, not a retriever; use contrastive or "
                                         "symmetric or distillation"):
        build_loss("listwise", training_args(), "retriever")
    with pytest.raises(ValueError, match="--loss must be one of contrastive, symmetric, distillation, "
                                         "listwise; got 'mse'"):
        build_loss("mse", training_args(), "retriever")
    assert set(LOSSES) == {"contrastive", "symmetric", "distillation", "listwise"}


def test_cross_device_negatives_wrap_any_retriever_loss(tiny_model_dir):
    wrapped = build_loss("distillation", training_args(negatives_cross_device=True), "retriever")
    assert isinstance(wrapped, CrossDeviceNegatives) and isinstance(wrapped.inner, DistillationLoss)
    model = EncoderModel(load_base_model(tiny_model_dir), spec=EmbeddingSpec(temperature=0.05))
    q, p, teacher = torch.randn(2, 8), torch.randn(4, 8), torch.randn(2, 2)
    # one process: gathering is the identity and the scale 1 (two gloo ranks: tests/test_distributed.py)
    torch.testing.assert_close(wrapped(model, q, p, teacher)[0], wrapped.inner(model, q, p, teacher)[0])

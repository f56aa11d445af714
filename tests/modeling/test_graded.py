"""The graders' tests: the course's four methods of EncoderModel, called on the class with
None as self, on numbers computed by hand.

In the student's handout (python -m retriever.driver.handout) the four methods raise
NotImplementedError and every test here fails; on the solution they all pass. Run them with

    python -m pytest tests/modeling/test_graded.py
"""
import math

import pytest
import torch
import torch.nn.functional as F

from retriever.modeling.encoder import EncoderModel


# ---- pooling(self, last_hidden_state, attention_mask) -> (batch, hidden) ------------------
def test_pooling_reads_the_last_real_token_of_each_row_through_the_mask_and_l2_normalises():
    hidden = torch.tensor([[[9.0, 9.0], [3.0, 4.0], [7.0, 7.0]],    # 2 real tokens: reads [3, 4]
                           [[1.0, 0.0], [0.0, 2.0], [0.0, -5.0]]])  # 3 real tokens: reads [0, -5]
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])  # long, as a tokenizer returns it
    out = EncoderModel.pooling(None, hidden, mask)
    assert out.shape == (2, 2) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.8], [0.0, -1.0]]))


def test_pooling_with_left_padding_reads_the_final_position():
    hidden = torch.tensor([[[9.0, 9.0], [3.0, 4.0], [8.0, 6.0]],
                           [[5.0, 5.0], [5.0, 5.0], [0.0, 3.0]]])
    mask = torch.tensor([[0, 1, 1], [0, 0, 1]])
    out = EncoderModel.pooling(None, hidden, mask)
    torch.testing.assert_close(out, torch.tensor([[0.8, 0.6], [0.0, 1.0]]))


def test_pooling_finds_the_position_from_the_mask_not_from_the_token_ids():
    # pad id == EOS id (SmolLM2): looking for the EOS id would find a padding position;
    # only the mask says the real text ends at position 1 in row 0 and position 3 in row 1.
    hidden = torch.zeros(2, 4, 3)
    hidden[:, :, 0] = torch.arange(4).float() + 1  # feature 0 = position + 1
    hidden[:, :, 1] = 1.0
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    out = EncoderModel.pooling(None, hidden, mask)
    expected = F.normalize(torch.tensor([[2.0, 1.0, 0.0], [4.0, 1.0, 0.0]]), dim=-1)
    torch.testing.assert_close(out, expected)


def test_pooling_keeps_the_hidden_size_and_gives_unit_vectors():
    torch.manual_seed(0)
    hidden, mask = torch.randn(5, 7, 16), torch.ones(5, 7, dtype=torch.long)
    mask[1, 4:] = 0
    out = EncoderModel.pooling(None, hidden, mask)
    assert out.shape == (5, 16)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(5))
    torch.testing.assert_close(out[1], F.normalize(hidden[1, 3], dim=-1))


# ---- compute_similarity(self, q_reps, p_reps, temperature) -> (n_queries, n_passages) ------
def test_similarity_is_the_dot_product_of_every_query_with_every_passage_over_the_temperature():
    q = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    out = EncoderModel.compute_similarity(None, q, p, 0.01)
    assert out.shape == (2, 3)
    torch.testing.assert_close(out, torch.tensor([[100.0, 0.0, 80.0], [60.0, 80.0, 96.0]]))
    torch.testing.assert_close(EncoderModel.compute_similarity(None, q, p, 0.5), out * 0.02)


def test_similarity_does_not_normalise_its_inputs():
    q, p = torch.tensor([[2.0, 0.0]]), torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(EncoderModel.compute_similarity(None, q, p, 1.0), torch.tensor([[6.0, 0.0]]))


# ---- compute_labels(self, n_queries, n_passages) -> torch.long (n_queries,) ----------------
def test_labels_are_long_multiples_of_the_group_size():
    labels = EncoderModel.compute_labels(None, 3, 9)
    assert labels.dtype == torch.long and labels.shape == (3,)
    assert labels.tolist() == [0, 3, 6]


def test_labels_with_one_passage_per_query_are_the_diagonal():
    assert EncoderModel.compute_labels(None, 4, 4).tolist() == [0, 1, 2, 3]
    assert EncoderModel.compute_labels(None, 2, 20).tolist() == [0, 10]


# ---- compute_loss(self, scores, target) -> 0-dim tensor ------------------------------------
def test_loss_is_the_mean_cross_entropy_as_a_0_dim_tensor():
    log3 = math.log(3.0)
    scores = torch.tensor([[log3, 0.0, 0.0],    # p(target 0) = 3/5 -> -log 0.6
                           [0.0, 0.0, log3]])   # p(target 1) = 1/5 -> -log 0.2
    loss = EncoderModel.compute_loss(None, scores, torch.tensor([0, 1]))
    assert loss.ndim == 0
    assert loss.item() == pytest.approx((-math.log(0.6) - math.log(0.2)) / 2, rel=1e-6)


def test_loss_lets_gradients_reach_the_scores():
    scores = torch.tensor([[2.0, 0.0], [0.0, 2.0]], requires_grad=True)
    EncoderModel.compute_loss(None, scores, torch.tensor([0, 1])).backward()
    assert scores.grad is not None and scores.grad[0, 0] < 0 < scores.grad[0, 1]


def test_the_four_methods_together_give_the_in_batch_contrastive_loss():
    torch.manual_seed(0)
    q_hidden, p_hidden = torch.randn(2, 3, 8), torch.randn(6, 5, 8)
    q_mask, p_mask = torch.ones(2, 3, dtype=torch.long), torch.ones(6, 5, dtype=torch.long)
    p_mask[2, 3:] = 0
    q = EncoderModel.pooling(None, q_hidden, q_mask)
    p = EncoderModel.pooling(None, p_hidden, p_mask)
    scores = EncoderModel.compute_similarity(None, q, p, 0.05)
    loss = EncoderModel.compute_loss(None, scores, EncoderModel.compute_labels(None, 2, 6))
    q_ref = F.normalize(q_hidden[:, -1], dim=-1)
    p_ref = F.normalize(torch.stack([p_hidden[i, 2 if i == 2 else 4] for i in range(6)]), dim=-1)
    expected = F.cross_entropy(q_ref @ p_ref.T / 0.05, torch.tensor([0, 3]))
    torch.testing.assert_close(loss, expected)

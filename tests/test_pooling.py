"""The pooling registry: each pooling reads the right positions through the attention mask."""
import pytest
import torch

from retriever.pooling import POOLINGS, pool


def hidden_with_marks(batch=3, seq=5, dim=4):
    """hidden[b, t] = [b, t, 0, 0...]: the pooled row says which position was read."""
    h = torch.zeros(batch, seq, dim)
    h[:, :, 0] = torch.arange(batch).unsqueeze(1).float()
    h[:, :, 1] = torch.arange(seq).float()
    return h


def test_last_token_pooling_right_padding_reads_last_real_token_of_each_length():
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    out = pool(hidden_with_marks(), mask, "last")
    assert out[:, 1].tolist() == [4, 2, 0]
    assert out[:, 0].tolist() == [0, 1, 2]


def test_last_token_pooling_left_padding_reads_final_position():
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]])
    assert pool(hidden_with_marks(), mask, "last")[:, 1].tolist() == [4, 4, 4]


def test_last_token_pooling_ignores_token_ids_when_pad_equals_eos():
    # ids [5, 6, EOS=2, PAD=2, PAD=2]: searching ids for EOS would pick position 2, 3 or 4;
    # the mask says position 2 is the real last token.
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    assert pool(hidden_with_marks(batch=1), mask, "last")[0, 1].item() == 2


def test_cls_pooling_reads_first_real_token_on_both_padding_sides():
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]])
    assert pool(hidden_with_marks(batch=2), mask, "cls")[:, 1].tolist() == [0, 2]


def test_mean_pooling_averages_only_real_tokens():
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    assert pool(hidden_with_marks(batch=1), mask, "mean")[0, 1].item() == pytest.approx(1.0)


def test_every_pooling_has_a_sentence_transformers_name_and_a_description():
    for name, pooling in POOLINGS.items():
        assert pooling.name == name and pooling.st_name and pooling.description


def test_unknown_pooling_lists_valid_choices():
    with pytest.raises(ValueError, match="last, mean|'last', 'mean', 'cls'"):
        pool(hidden_with_marks(), torch.ones(3, 5), "max")

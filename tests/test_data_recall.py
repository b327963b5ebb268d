"""The associative-recall task of chapter 11: distinct keys per sequence, the query is
one of them and the target its value; the recall model runs with either attention."""

import pytest
import torch

from attnbook.data.recall import make_recall_batch
from attnbook.linear_attention import RecallModel


def test_recall_batch_and_model():
    b = make_recall_batch(50, num_pairs=8, num_keys=10, num_values=4, seed=0)
    assert (b.keys.sort(1).values.diff(1) > 0).all()  # distinct keys per row
    rows = torch.arange(50)
    assert torch.equal(b.keys[rows, b.index], b.query)
    assert torch.equal(b.values[rows, b.index], b.target)
    assert torch.equal(make_recall_batch(50, 8, 10, 4, seed=0).keys, b.keys)
    for kind in ("softmax", "linear"):
        out = RecallModel(10, 4, 8, kind)(b.keys, b.values, b.query)
        assert out.shape == (50, 4)
    with pytest.raises(ValueError, match="num_keys"):
        make_recall_batch(2, num_pairs=5, num_keys=4)


def test_a_generator_draws_new_batches_and_seed_or_generator_not_both():
    g = torch.Generator().manual_seed(0)
    a, b = make_recall_batch(8, generator=g), make_recall_batch(8, generator=g)
    assert not torch.equal(a.keys, b.keys)
    with pytest.raises(ValueError, match="not both"):
        make_recall_batch(8, seed=0, generator=g)

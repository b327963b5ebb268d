"""attnbook.data.marker_task: one marker per sequence, the target is the token after it."""

import pytest
import torch

from attnbook.data.marker_task import make_marker_batch, marker_id


def test_one_marker_and_the_target_follows_it():
    batch = make_marker_batch(500, length=12, num_tokens=7, seed=3)
    M = marker_id(7)
    assert batch.tokens.shape == (500, 12) and batch.targets.shape == (500,)
    assert ((batch.tokens == M).sum(-1) == 1).all()
    rows = torch.arange(500)
    assert (batch.tokens[rows, batch.marker_pos] == M).all()
    assert torch.equal(batch.tokens[rows, batch.marker_pos + 1], batch.targets)
    assert batch.targets.max() < 7 and batch.marker_pos.max() <= 10
    assert batch.hint is None


def test_marker_positions_and_targets_cover_their_range():
    batch = make_marker_batch(2000, length=8, num_tokens=5, seed=0)
    assert set(batch.marker_pos.tolist()) == set(range(7))
    assert set(batch.targets.tolist()) == set(range(5))


def test_seeded_and_streamed():
    a = make_marker_batch(10, seed=1)
    b = make_marker_batch(10, seed=1)
    c = make_marker_batch(10, seed=2)
    assert torch.equal(a.tokens, b.tokens) and not torch.equal(a.tokens, c.tokens)
    g = torch.Generator().manual_seed(0)
    first, second = make_marker_batch(10, generator=g), make_marker_batch(10, generator=g)
    assert not torch.equal(first.tokens, second.tokens)
    with pytest.raises(ValueError, match="not both"):
        make_marker_batch(10, seed=1, generator=g)


def test_long_variant_hint_is_the_block_of_the_marker():
    batch = make_marker_batch(300, length=128, block=8, seed=0)
    assert torch.equal(batch.hint, batch.marker_pos // 8)
    assert batch.hint.max() == 15
    moved = batch.to("cpu")
    assert torch.equal(moved.hint, batch.hint)


@pytest.mark.parametrize("kwargs", [dict(length=1), dict(num_tokens=1), dict(block=0),
                                    dict(length=8, block=9)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        make_marker_batch(4, **kwargs)

"""attnbook.data.lookup_task: one marker per sequence; targets after and before it."""

import pytest
import torch

from attnbook.data.lookup_task import lookup_marker_id, make_lookup_batch


def test_one_marker_and_targets_are_its_neighbours():
    batch = make_lookup_batch(500, length=12, num_tokens=7, seed=3)
    M = lookup_marker_id(7)
    assert batch.tokens.shape == (500, 12)
    assert ((batch.tokens == M).sum(-1) == 1).all()
    rows = torch.arange(500)
    assert (batch.tokens[rows, batch.marker_pos] == M).all()
    assert torch.equal(batch.tokens[rows, batch.marker_pos + 1], batch.after)
    assert torch.equal(batch.tokens[rows, batch.marker_pos - 1], batch.before)
    assert batch.after.max() < 7 and batch.before.max() < 7


def test_positions_and_targets_cover_their_range():
    batch = make_lookup_batch(2000, length=8, num_tokens=5, seed=0)
    assert set(batch.marker_pos.tolist()) == set(range(1, 7))
    assert set(batch.after.tolist()) == set(range(5)) == set(batch.before.tolist())
    # after and before are independent draws, not the same token
    assert (batch.after != batch.before).float().mean() > 0.7


def test_seeded_and_streamed():
    a, b = make_lookup_batch(10, seed=1), make_lookup_batch(10, seed=1)
    c = make_lookup_batch(10, seed=2)
    assert torch.equal(a.tokens, b.tokens) and not torch.equal(a.tokens, c.tokens)
    g = torch.Generator().manual_seed(5)
    first, second = make_lookup_batch(10, generator=g), make_lookup_batch(10, generator=g)
    assert not torch.equal(first.tokens, second.tokens)
    with pytest.raises(ValueError, match="not both"):
        make_lookup_batch(10, seed=1, generator=g)


def test_bad_sizes():
    with pytest.raises(ValueError, match="length"):
        make_lookup_batch(4, length=2)
    with pytest.raises(TypeError, match="num_tokens"):
        make_lookup_batch(4, num_tokens=5.0)


@pytest.mark.parametrize("bad, kind", [(-1, ValueError), (1, ValueError), (2.5, TypeError),
                                       ("3", TypeError), (None, TypeError)])
def test_marker_id_refuses_a_bad_vocabulary_size(bad, kind):
    with pytest.raises(kind, match="num_tokens"):
        lookup_marker_id(bad)

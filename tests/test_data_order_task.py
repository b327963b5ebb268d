"""Chapter 7's order task: pairs with one multiset and opposite labels."""

from collections import Counter

import pytest
import torch

from attnbook.data.order_task import TOKEN_A, TOKEN_B, make_order_batch


def test_shapes_labels_and_positions():
    b = make_order_batch(200, length=9, num_tokens=6, seed=3)
    assert b.tokens.shape == (200, 9) and b.tokens.dtype == torch.long
    rows = torch.arange(200)
    assert (b.tokens[rows, b.pos_a] == TOKEN_A).all() and (b.tokens[rows, b.pos_b] == TOKEN_B).all()
    assert ((b.tokens == TOKEN_A).sum(1) == 1).all() and ((b.tokens == TOKEN_B).sum(1) == 1).all()
    assert (b.labels == (b.pos_a < b.pos_b).long()).all()
    assert b.tokens.min() >= 0 and b.tokens.max() < 6
    assert b.labels.float().mean() == 0.5


def test_pairs_share_their_multiset_so_order_blind_models_are_at_chance():
    b = make_order_batch(100, length=6, num_tokens=5, seed=0)
    for k in range(0, 100, 2):
        assert Counter(b.tokens[k].tolist()) == Counter(b.tokens[k + 1].tolist())
        assert b.labels[k] == 1 and b.labels[k + 1] == 0
    # any function of the multiset alone (here: the sorted tokens) is right on half
    key = b.tokens.sort(dim=1).values
    guess = (key.sum(1) % 2 == 0).long()
    assert (guess == b.labels).float().mean() == 0.5


def test_positions_cover_every_ordered_pair():
    b = make_order_batch(4000, length=4, num_tokens=3, seed=1)
    seen = set(zip(b.pos_a.tolist(), b.pos_b.tolist(), strict=True))
    assert seen == {(i, j) for i in range(4) for j in range(4) if i != j}


def test_seeded_and_streamed():
    a, b = make_order_batch(10, seed=4), make_order_batch(10, seed=4)
    assert torch.equal(a.tokens, b.tokens)
    g = torch.Generator().manual_seed(4)
    first, second = make_order_batch(10, generator=g), make_order_batch(10, generator=g)
    assert torch.equal(first.tokens, a.tokens) and not torch.equal(first.tokens, second.tokens)
    assert make_order_batch(2, length=2, num_tokens=3, seed=0).tokens.tolist() == [[0, 1],
                                                                                   [1, 0]]


@pytest.mark.parametrize("kwargs, kind, words", [
    (dict(n=3), ValueError, "even"),
    (dict(n=0), ValueError, "even"),
    (dict(n=4, length=1), ValueError, "length"),
    (dict(n=4, num_tokens=2), ValueError, "num_tokens"),
    (dict(n=4.0), TypeError, "n should be an int"),
    (dict(n=4, seed=1, generator=torch.Generator()), ValueError, "seed or generator"),
])
def test_bad_input(kwargs, kind, words):
    with pytest.raises(kind, match=words):
        make_order_batch(**kwargs)

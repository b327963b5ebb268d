"""attnbook.pointer and attnbook.data.sorting (chapter 10)."""

import pytest
import torch

from attnbook.data.sorting import make_sort_batch
from attnbook.pointer import PointerConfig, PointerNetwork, pointer_loss


def _model():
    torch.manual_seed(0)
    return PointerNetwork(PointerConfig(d_model=16, num_heads=2, d_ff=32, num_layers=1))


def test_sort_batch_order_sorts_the_values():
    b = make_sort_batch(5, length=7, seed=0)
    assert b.values.shape == b.order.shape == (5, 7)
    assert (b.values.gather(1, b.order).diff(dim=1) > 0).all()
    assert torch.equal(make_sort_batch(5, 7, seed=0).values, b.values)  # seeded
    with pytest.raises(ValueError, match="seed or generator"):
        make_sort_batch(2, 3, seed=0, generator=torch.Generator())


def test_teacher_forced_scores_mask_the_positions_already_chosen():
    b = make_sort_batch(3, length=5, seed=1)
    scores = _model()(b.values, b.order)  # (B, T, n)
    assert scores.shape == (3, 5, 5)
    for t in range(5):
        chosen = b.order[:, :t]
        assert torch.isinf(scores[:, t].gather(1, chosen)).all()
        assert torch.isfinite(scores[:, t].gather(1, b.order[:, t:])).all()


def test_greedy_decode_returns_a_permutation_and_its_scores():
    b = make_sort_batch(4, length=6, seed=2)
    order, scores = _model().decode(b.values)
    assert torch.equal(order.sort(1).values, torch.arange(6).expand(4, 6))
    assert torch.equal(scores.argmax(-1), order)


def test_pointer_loss_is_cross_entropy_over_input_positions():
    scores = torch.randn(2, 4, 4)
    order = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]])
    expected = -torch.log_softmax(scores, -1).gather(2, order[..., None]).mean()
    torch.testing.assert_close(pointer_loss(scores, order), expected)
    with pytest.raises(ValueError, match="order should hold positions"):
        pointer_loss(scores, order + 4)


def test_a_few_steps_lower_the_loss():
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        b = make_sort_batch(32, length=5, generator=g)
        loss = pointer_loss(model(b.values, b.order), b.order)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) < sum(losses[:5])


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"values should have shape \(B, n\)"):
        _model().decode(torch.rand(2, 0))
    with pytest.raises(ValueError, match="permutation"):
        _model()(torch.rand(1, 3), torch.tensor([[0, 0, 1]]))
    with pytest.raises(TypeError, match="cfg should be a PointerConfig"):
        PointerNetwork({"d_model": 8})

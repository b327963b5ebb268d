"""attnbook.kernel_regression: Nadaraya–Watson regression as attention pooling (chapter 3)."""

import pytest
import torch
from torch.testing import assert_close

from attnbook.attention import scaled_dot_product_attention
from attnbook.kernel_regression import (
    KERNELS,
    kernel_values,
    loo_error,
    loo_predictions,
    nadaraya_watson,
    select_bandwidth_loo,
)


def _points(S=12, T=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.sort(5 * torch.rand(S, generator=g)).values
    y = torch.randn(S, generator=g)
    q = 5 * torch.rand(T, generator=g)
    return q, x, y


def _loop(q, x, y, h, kernel):
    """One query at a time, one training point at a time."""
    out = []
    for qt in q.tolist():
        num = den = 0.0
        for xs, ys in zip(x.tolist(), y.tolist(), strict=True):
            k = float(kernel_values(torch.tensor((qt - xs) ** 2 / h**2), kernel))
            num, den = num + k * ys, den + k
        out.append(num / den)
    return torch.tensor(out)


@pytest.mark.parametrize("kernel", KERNELS)
def test_rows_sum_to_one_and_prediction_equals_a_loop(kernel):
    q, x, y = _points()
    pred, w = nadaraya_watson(q, x, y, bandwidth=1.5, kernel=kernel)
    assert pred.shape == (7,) and w.shape == (7, 12)
    assert_close(w.sum(-1), torch.ones(7))
    assert (w >= 0).all()
    assert_close(pred, _loop(q, x, y, 1.5, kernel))


@pytest.mark.parametrize("kernel", KERNELS)
def test_tiny_bandwidth_gives_the_nearest_target(kernel):
    q, x, y = _points()
    pred, w = nadaraya_watson(q, x, y, bandwidth=1e-4, kernel=kernel)
    nearest = (q[:, None] - x[None]).abs().argmin(-1)
    assert_close(pred, y[nearest])
    assert torch.isfinite(w).all()
    pred_at_train, _ = nadaraya_watson(x, x, y, bandwidth=1e-4, kernel=kernel)
    assert_close(pred_at_train, y)  # each training point sees only itself


@pytest.mark.parametrize("kernel", KERNELS)
def test_huge_bandwidth_gives_the_global_mean(kernel):
    q, x, y = _points()
    pred, w = nadaraya_watson(q, x, y, bandwidth=1e4, kernel=kernel)
    assert_close(pred, y.mean().expand(7), atol=1e-5, rtol=1e-5)
    assert_close(w, torch.full((7, 12), 1 / 12), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kernel", ["boxcar", "epanechnikov"])
def test_empty_window_falls_back_to_the_nearest_point_without_nan(kernel):
    x = torch.tensor([0.0, 1.0, 2.0, 4.0])
    y = torch.tensor([10.0, 20.0, 30.0, 40.0])
    q = torch.tensor([3.2, 0.1, 3.0, -5.0])  # 3.2 and -5 see nothing; 3.0 ties 2 and 4
    pred, w = nadaraya_watson(q, x, y, bandwidth=0.5, kernel=kernel)
    assert not torch.isnan(pred).any() and not torch.isnan(w).any()
    assert_close(pred, torch.tensor([40.0, 10.0, 35.0, 10.0]))
    assert_close(w[2], torch.tensor([0.0, 0.0, 0.5, 0.5]))


def test_gaussian_weights_are_a_softmax_of_negative_squared_distance():
    q, x, y = _points()
    _, w = nadaraya_watson(q, x, y, bandwidth=0.7)
    assert_close(w, torch.softmax(-((q[:, None] - x[None]) ** 2) / (2 * 0.7**2), dim=-1))


def test_vectors_with_fixed_norm_give_scaled_dot_product_attention():
    g = torch.Generator().manual_seed(1)
    d = 16
    q = torch.nn.functional.normalize(torch.randn(2, 5, d, generator=g), dim=-1) * 3
    k = torch.nn.functional.normalize(torch.randn(2, 9, d, generator=g), dim=-1) * 3
    v = torch.randn(2, 9, 4, generator=g)
    out, w = nadaraya_watson(q, k, v, bandwidth=d**0.25)  # h^2 = sqrt(d)
    ref_out, ref_w = scaled_dot_product_attention(q, k, v)
    # -|q-k|^2 / (2 sqrt(d)) = q.k / sqrt(d) - const: the same softmax
    assert_close(w, ref_w, atol=1e-5, rtol=1e-4)
    assert_close(out, ref_out, atol=1e-5, rtol=1e-4)


def test_batched_queries_and_vector_values():
    g = torch.Generator().manual_seed(2)
    q, k, v = torch.randn(3, 4, 2, generator=g), torch.randn(3, 6, 2, generator=g), \
        torch.randn(3, 6, 5, generator=g)
    out, w = nadaraya_watson(q, k, v, bandwidth=0.8, kernel="epanechnikov")
    assert out.shape == (3, 4, 5) and w.shape == (3, 4, 6)
    for b in range(3):
        out_b, w_b = nadaraya_watson(q[b], k[b], v[b], bandwidth=0.8, kernel="epanechnikov")
        assert_close(out[b], out_b)
        assert_close(w[b], w_b)
    scalar_out, _ = nadaraya_watson(q, k, v[..., 0], bandwidth=0.8)  # values (B, S)
    assert scalar_out.shape == (3, 4)


def test_per_query_bandwidth_and_gradient():
    q, x, y = _points()
    log_h = torch.zeros(7, 1, requires_grad=True)  # one bandwidth per query
    pred, w = nadaraya_watson(q, x, y, bandwidth=log_h.exp())
    assert_close(pred, nadaraya_watson(q, x, y, bandwidth=1.0)[0])
    pred.sum().backward()
    assert log_h.grad is not None and torch.isfinite(log_h.grad).all()
    assert (log_h.grad != 0).any()


@pytest.mark.parametrize("kernel", KERNELS)
def test_leave_one_out_never_uses_the_point_itself(kernel):
    _, x, y = _points(S=10)
    pred, w = loo_predictions(x, y, bandwidth=0.01, kernel=kernel)
    assert (torch.diagonal(w) == 0).all()
    assert_close(w.sum(-1), torch.ones(10))
    for i in range(10):  # the same as refitting without point i
        keep = torch.arange(10) != i
        alone, _ = nadaraya_watson(x[i:i + 1], x[keep], y[keep], bandwidth=0.01, kernel=kernel)
        assert_close(pred[i:i + 1], alone)
    assert_close(loo_error(x, y, 0.01, kernel), ((pred - y) ** 2).mean())


def test_select_bandwidth_picks_the_smallest_loo_error():
    g = torch.Generator().manual_seed(0)
    x = torch.sort(5 * torch.rand(60, generator=g)).values
    y = torch.sin(2 * x) + 0.5 * torch.randn(60, generator=g)
    candidates = [0.01, 0.05, 0.15, 0.5, 2.0]
    best, errors = select_bandwidth_loo(x, y, candidates)
    assert errors.shape == (5,)
    assert best == candidates[int(errors.argmin())]
    assert best not in (0.01, 2.0)  # too narrow and too wide both lose
    assert_close(errors[3], loo_error(x, y, 0.5))


def test_clear_errors_for_bad_input():
    q, x, y = _points()
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        nadaraya_watson(q, x, y, bandwidth=0.0)
    with pytest.raises(ValueError, match="kernel should be one of"):
        nadaraya_watson(q, x, y, kernel="triangle")
    with pytest.raises(ValueError, match="values"):
        nadaraya_watson(q, x, y[:5])
    with pytest.raises(TypeError, match="floating-point"):
        nadaraya_watson(q, x, torch.arange(12))
    with pytest.raises(ValueError, match="queries and keys"):
        nadaraya_watson(q[:, None], x, y)
    with pytest.raises(ValueError, match="empty"):
        select_bandwidth_loo(x, y, [])

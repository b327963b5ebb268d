"""attnbook's core helpers: seeds, devices, shape checks, heatmaps, the training loop."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from attnbook import check_float, check_shape, get_device, set_seed, show_heatmaps
from attnbook.train import plot_history, train_steps


def test_set_seed_repeats_torch_and_numpy():
    set_seed(3)
    a = torch.randn(4), np.random.rand(4)
    set_seed(3)
    b = torch.randn(4), np.random.rand(4)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="non-negative int"):
        set_seed(-1)


def test_set_seed_runs_torch_on_one_thread():
    """One thread: results independent of the core count, no spinning workers."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        set_seed(0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("ATTNBOOK_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device() == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA"):
        get_device("cuda")


def test_get_device_can_be_forced(monkeypatch):
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("ATTNBOOK_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_check_shape_binds_letters_across_calls():
    dims = check_shape(torch.zeros(2, 5, 8), ("B", "T", "d"), "queries")
    assert dims == {"B": 2, "T": 5, "d": 8}
    check_shape(torch.zeros(2, 7, 8), ("B", "S", "d"), "keys", dims)
    expected = r"keys should have shape \(B, S, d\).*'d': 8.*\(2, 7, 4\)"
    with pytest.raises(ValueError, match=expected):
        check_shape(torch.zeros(2, 7, 4), ("B", "S", "d"), "keys", dims)


@pytest.mark.parametrize("x, shape, message", [
    (torch.zeros(3, 4), (3,), "should have 1 dimensions"),
    (np.zeros((3, 4)), (3, 5), r"should have shape \(3, 5\)"),
    (torch.zeros(3, 4), ("n", "n"), r"should have shape \(n, n\)"),
    ([1, 2], (2,), "torch.Tensor or numpy.ndarray, got a list"),
])
def test_check_shape_says_what_was_expected(x, shape, message):
    with pytest.raises((ValueError, TypeError), match=message):
        check_shape(x, shape)


def test_check_shape_accepts_wildcards_and_rejects_a_bare_int():
    check_shape(np.zeros((3, 4)), (None, 4))
    with pytest.raises(TypeError, match="must be a tuple"):
        check_shape(np.zeros(3), 3)


def test_check_float():
    check_float(torch.zeros(2))
    check_float(np.zeros(2))
    with pytest.raises(TypeError, match="floating-point.*int64"):
        check_float(torch.zeros(2, dtype=torch.int64), "scores")


def test_show_heatmaps_grid_labels_and_colour_bar():
    weights = torch.softmax(torch.randn(2, 3, 4, 5), dim=-1)  # a 2 x 3 grid of (4, 5) maps
    fig = show_heatmaps(weights, xlabels=list("abcde"), ylabels=list("wxyz"))
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 6
    assert len(fig.axes) == 7  # six maps and one shared colour bar
    bottom_left = image_axes[3]  # shared axes: the bottom row carries the key labels
    assert [t.get_text() for t in bottom_left.get_xticklabels()] == list("abcde")
    assert [t.get_text() for t in bottom_left.get_yticklabels()] == list("wxyz")
    assert image_axes[0].get_ylabel() == "queries" and image_axes[3].get_xlabel() == "keys"


def test_show_heatmaps_accepts_a_list_with_titles():
    fig = show_heatmaps([np.eye(3), np.ones((3, 3)) / 3], titles=["sharp", "flat"])
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["sharp", "flat"]


@pytest.mark.parametrize("bad, kwargs, message", [
    (torch.zeros(5), {}, r"\(T, S\) matrix.*got shape \(5,\)"),
    (torch.zeros(3, 4), {"xlabels": list("abc")}, "expected 4 labels"),
    (torch.zeros(3, 4), {"ylabels": list("ab")}, "expected 3 labels"),
    ([np.zeros((2, 2)), np.zeros((3, 3))], {}, "share one shape"),
    ("weights", {}, "torch.Tensor or numpy.ndarray"),
    (torch.zeros(3, 4), {"vmin": 0.5, "vmax": 0.5}, "vmin should be below vmax"),
    (torch.zeros(3, 4), {"vmax": "1"}, "vmax should be a number, got the str '1'"),
    (torch.zeros(3, 4), {"vmin": float("nan")}, "vmin should be a finite number, got nan"),
    (torch.zeros(3, 4), {"cell_size": 0}, "cell_size should be a finite number > 0, got 0"),
])
def test_show_heatmaps_rejects_bad_input(bad, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        show_heatmaps(bad, **kwargs)


def test_check_number_takes_finite_real_numbers_above_a_bound():
    from attnbook.shapes import check_number
    assert check_number(3, "eps") == 3.0 and isinstance(check_number(np.float32(0.5)), float)
    assert check_number(-2.5, "x") == -2.5  # no bound: any finite number
    for bad, error, message in [(True, TypeError, "eps should be a number, got the bool"),
                                ("1", TypeError, "eps should be a number, got the str"),
                                (math.inf, ValueError, "eps should be a finite number > 0"),
                                (0.0, ValueError, "eps should be a finite number > 0, got 0.0")]:
        with pytest.raises(error, match=message):
            check_number(bad, "eps", above=0)


def test_train_steps_records_history_and_trains():
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)

    def step(i):
        loss = (w - 3.0).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    history = train_steps(step, 50, log_every=10, progress=False)
    assert history["step"] == [0, 10, 20, 30, 40, 49]
    assert history["loss"][-1] < 1e-3 < history["loss"][0]
    ax = plot_history({"sgd": history})
    assert ax.get_ylabel() == "loss"
    with pytest.raises(ValueError, match="metric 'acc' is not in run"):
        plot_history({"sgd": history}, metric="acc")


def test_train_steps_rejects_a_step_without_metrics():
    with pytest.raises(TypeError, match="dict of metrics"):
        train_steps(lambda i: 1.0, 2, progress=False)

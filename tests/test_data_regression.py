"""attnbook.data.regression: the seeded 1-D data set of chapter 3."""

import pytest
import torch

from attnbook.data.regression import make_regression_data, true_function


def test_shapes_sorted_and_in_range():
    data = make_regression_data(n_train=40, n_test=30)
    assert data.x_train.shape == data.y_train.shape == (40,)
    assert data.x_test.shape == data.y_test.shape == (30,)
    for x in (data.x_train, data.x_test):
        assert (x[1:] >= x[:-1]).all()
        assert x.min() >= 0 and x.max() <= 5


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = make_regression_data(seed=3), make_regression_data(seed=3), make_regression_data()
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)


def test_noise_has_the_requested_size_and_zero_noise_is_exact():
    data = make_regression_data(n_train=2000, n_test=2000, noise=0.5)
    residual = data.y_train - true_function(data.x_train)
    assert abs(residual.std().item() - 0.5) < 0.03 and abs(residual.mean().item()) < 0.03
    clean = make_regression_data(noise=0.0)
    assert torch.equal(clean.y_test, clean.f(clean.x_test))


def test_train_and_test_are_disjoint_draws():
    data = make_regression_data()
    assert not set(data.x_train.tolist()) & set(data.x_test.tolist())


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n_train"):
        make_regression_data(n_train=1)
    with pytest.raises(ValueError, match="noise"):
        make_regression_data(noise=-1.0)
    with pytest.raises(ValueError, match="x >= 0"):
        make_regression_data(low=-1.0)

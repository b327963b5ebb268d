"""attnbook.sets and attnbook.data.digits (chapter 10): equivariance, invariance, PMA."""

import pytest
import torch
from torch.testing import assert_close

from attnbook.data.digits import _load_digits, load_digits_split, make_digit_sets
from attnbook.sets import MAB, PMA, OddOneOut


def test_digits_are_scikit_learns():
    from sklearn.datasets import load_digits

    data = load_digits()
    images, labels = _load_digits()
    assert torch.equal(images, torch.tensor(data.images, dtype=torch.float32) / 16)
    assert torch.equal(labels, torch.tensor(data.target))


def test_digits_split_is_fixed_and_disjoint():
    s = load_digits_split(seed=0)
    assert s.train_images.shape == (1347, 8, 8) and s.test_images.shape == (450, 8, 8)
    assert 0.0 <= s.train_images.min() and s.train_images.max() <= 1.0
    assert torch.equal(load_digits_split(seed=0).test_labels, s.test_labels)


def test_digit_sets_have_nine_of_one_class_and_one_odd():
    s = load_digits_split(seed=0)
    sets = make_digit_sets(s.test_images, s.test_labels, 6, seed=0)
    assert sets.sets.shape == (6, 10, 8, 8)
    lookup = {img.flatten().numpy().tobytes(): int(y)
              for img, y in zip(s.test_images, s.test_labels, strict=True)}
    for b in range(6):
        labels = [lookup[img.flatten().numpy().tobytes()] for img in sets.sets[b]]
        odd = int(sets.odd[b])
        assert labels[odd] == int(sets.classes[b, 1]) != int(sets.classes[b, 0])
        assert all(y == int(sets.classes[b, 0]) for i, y in enumerate(labels) if i != odd)


def test_attention_model_is_permutation_equivariant_and_pma_invariant():
    torch.manual_seed(0)
    x = torch.rand(3, 7, 8, 8)
    perm = torch.randperm(7)
    for kind in ("attention", "mean"):
        model = OddOneOut(kind=kind, d_model=16, num_heads=2, d_ff=32)
        assert_close(model(x[:, perm]), model(x)[:, perm])
    pma = PMA(16, 2, 32, num_seeds=2)
    z = torch.randn(3, 7, 16)
    pooled, w = pma(z, need_weights=True)
    assert pooled.shape == (3, 2, 16) and w.shape == (3, 2, 2, 7)
    assert_close(pma(z[:, perm])[0], pooled)


def test_mab_is_attention_plus_ffn_with_layer_norm():
    torch.manual_seed(0)
    mab = MAB(8, 2, 16)
    x, y = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    a, _ = mab.attn(x, y, y)
    h = mab.norm1(x + a)
    assert_close(mab(x, y)[0], mab.norm2(h + mab.ff(h)))


def test_empty_sets_and_wrong_sizes_are_refused():
    model = OddOneOut(d_model=16, num_heads=2, d_ff=32)
    with pytest.raises(ValueError, match="empty set"):
        model(torch.zeros(1, 0, 8, 8))
    with pytest.raises(ValueError, match="empty set"):
        PMA(16, 2, 32)(torch.zeros(2, 0, 16))
    with pytest.raises(ValueError, match="pixels=64"):
        model(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="set_size"):
        s = load_digits_split()
        make_digit_sets(s.test_images, s.test_labels, 2, set_size=1)

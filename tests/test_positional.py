"""Chapter 7's positional encodings: sinusoidal, learned, RoPE and ALiBi."""

import math

import pytest
import torch
from torch.testing import assert_close

from attnbook.positional import (
    LearnedPositionalEmbedding,
    alibi_bias,
    alibi_slopes,
    apply_rope,
    inverse_frequencies,
    sinusoidal_encoding,
)


@pytest.mark.parametrize("max_len, d, base", [(1, 2, 10000.0), (7, 4, 10000.0),
                                              (50, 16, 10000.0), (9, 6, 100.0)])
def test_sinusoidal_matches_the_formula(max_len, d, base):
    pe = sinusoidal_encoding(max_len, d, base)
    assert pe.shape == (max_len, d) and pe.dtype == torch.float32
    for p in range(max_len):
        for i in range(d // 2):
            angle = p / base ** (2 * i / d)
            assert pe[p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_sinusoidal_matches_the_pytorch_tutorial_table():
    """The PyTorch tutorial's PositionalEncoding, written independently (exp/log form)."""
    max_len, d = 30, 12
    position = torch.arange(max_len).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
    ref = torch.zeros(max_len, d)
    ref[:, 0::2] = torch.sin(position * div_term)
    ref[:, 1::2] = torch.cos(position * div_term)
    assert_close(sinusoidal_encoding(max_len, d), ref, atol=1e-5, rtol=0)


def test_sinusoidal_shift_is_a_rotation_that_depends_on_k_only():
    d, base = 8, 10000.0
    pe = sinusoidal_encoding(40, d, base).double()
    omega = inverse_frequencies(d, base).double()
    for k in (1, 3, 10):
        blocks = []
        for w in omega:
            c, s = math.cos(k * w), math.sin(k * w)
            blocks.append(torch.tensor([[c, s], [-s, c]], dtype=torch.float64))
        M = torch.block_diag(*blocks)  # (d, d)
        assert_close(pe[:-k] @ M.T, pe[k:], atol=1e-5, rtol=0)
    assert_close(pe.norm(dim=-1), torch.full((40,), math.sqrt(d / 2), dtype=torch.float64))


@pytest.mark.parametrize("args, kind, words", [
    ((10, 7), ValueError, "even"),
    ((0, 8), ValueError, "max_len"),
    ((-3, 8), ValueError, "max_len"),
    ((10, 0), ValueError, "d should be"),
    ((10.0, 8), TypeError, "max_len"),
    ((10, 8, 1.0), ValueError, "base"),
])
def test_sinusoidal_bad_input(args, kind, words):
    with pytest.raises(kind, match=words):
        sinusoidal_encoding(*args)


def test_learned_embedding_adds_its_table():
    torch.manual_seed(0)
    emb = LearnedPositionalEmbedding(10, 4)
    x = torch.randn(3, 6, 4)
    assert_close(emb(x), x + emb.table[:6])
    emb(x).sum().backward()
    assert emb.table.grad[:6].abs().sum() > 0 and emb.table.grad[6:].abs().sum() == 0
    assert emb(torch.randn(10, 4)).shape == (10, 4)


def test_learned_embedding_errors():
    emb = LearnedPositionalEmbedding(5, 4)
    with pytest.raises(ValueError, match=r"T = 6.*max_len = 5"):
        emb(torch.randn(2, 6, 4))
    with pytest.raises(ValueError, match=r"feature size 3.*d = 4"):
        emb(torch.randn(2, 5, 3))
    with pytest.raises(TypeError, match="floating"):
        emb(torch.ones(2, 5, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="max_len"):
        LearnedPositionalEmbedding(5.0, 4)
    with pytest.raises(TypeError, match=r"x should be a torch.Tensor.*torch.as_tensor"):
        emb(torch.randn(2, 5, 4).numpy())
    for bad in (float("nan"), -1.0, float("inf")):
        with pytest.raises(ValueError, match="init_std"):
            LearnedPositionalEmbedding(5, 4, init_std=bad)
    with pytest.raises(TypeError, match="init_std"):
        LearnedPositionalEmbedding(5, 4, init_std=None)


def _rope_complex(x, positions, base=10000.0):
    """Reference: pairs as complex numbers times e^{i p omega} (Meta's LLaMA reference code)."""
    d = x.shape[-1]
    omega = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    rot = torch.polar(torch.ones_like(omega), positions.double()[..., None] * omega)
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(z * rot).reshape(x.shape).to(x.dtype)


@pytest.mark.parametrize("shape", [(5, 4), (2, 7, 8), (2, 3, 6, 16)])
def test_rope_matches_complex_rotation(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    T = shape[-2]
    assert_close(apply_rope(x), _rope_complex(x, torch.arange(T)), atol=1e-5, rtol=1e-5)
    pos = torch.tensor([3.0, 100.0, 7.5, 0.0, 1e3, 2.0, 9.0])[:T]
    assert_close(apply_rope(x, pos), _rope_complex(x, pos), atol=1e-4, rtol=1e-4)
    assert_close(apply_rope(x).norm(dim=-1), x.norm(dim=-1))


def test_rope_positions_per_batch_and_position_zero():
    x = torch.randn(2, 4, 8)
    pos = torch.tensor([[0, 1, 2, 3], [5, 6, 7, 8]])
    out = apply_rope(x, pos)
    assert_close(out[0], apply_rope(x[0]))
    assert_close(out[1], apply_rope(x[1], torch.arange(5, 9)))
    assert_close(apply_rope(x, torch.zeros(4)), x)


def test_rope_scores_depend_on_offset_only():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(1, 16, generator=g), torch.randn(1, 16, generator=g)

    def score(m, n):
        return (apply_rope(q, torch.tensor([m])) @ apply_rope(k, torch.tensor([n])).T).item()

    for m, n in [(0, 0), (5, 2), (9, 3), (40, 40)]:
        assert score(m, n) == pytest.approx(score(m + 17, n + 17), abs=1e-4)
    assert abs(score(5, 2) - score(2, 5)) > 1e-3  # the sign of m - n matters


def test_rope_halves_variant_is_a_permutation_of_features():
    """GPT-NeoX/LLaMA-HF pair feature j with j + d/2: the same rotation, features permuted."""
    d = 8
    x = torch.randn(2, 5, d)
    omega = inverse_frequencies(d)
    ang = torch.arange(5)[:, None] * omega  # (T, d/2)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    halves = torch.cat([x1 * ang.cos() - x2 * ang.sin(), x2 * ang.cos() + x1 * ang.sin()], -1)
    perm = torch.stack([torch.arange(d // 2), torch.arange(d // 2) + d // 2], -1).flatten()
    assert_close(apply_rope(x[..., perm])[..., perm.argsort()], halves, atol=1e-6, rtol=1e-6)


def test_rope_bad_input():
    with pytest.raises(ValueError, match="even"):
        apply_rope(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="shape"):
        apply_rope(torch.randn(4))
    with pytest.raises(TypeError, match="positions"):
        apply_rope(torch.randn(3, 4), positions=[0, 1, 2])
    with pytest.raises(ValueError, match="broadcast"):
        apply_rope(torch.randn(2, 3, 4), positions=torch.arange(4))
    with pytest.raises(TypeError, match="floating"):
        apply_rope(torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"x should be a torch.Tensor.*torch.as_tensor"):
        apply_rope(torch.randn(3, 4).numpy())
    with pytest.raises(ValueError, match=r"x should have shape.*\(3, 0\)"):
        apply_rope(torch.randn(3, 0))


def test_alibi_slopes_and_bias():
    assert_close(alibi_slopes(8), torch.tensor([2.0 ** -k for k in range(1, 9)]))
    six = alibi_slopes(6)  # the 4 slopes of h=4, then the 1st and 3rd of h=8
    assert_close(six, torch.tensor([2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3]))
    bias = alibi_bias(4, 4, 2)
    assert bias.shape == (2, 4, 4)
    assert_close(bias[0], -alibi_slopes(2)[0] * (torch.arange(4)[:, None]
                                                   - torch.arange(4)).abs().float())
    assert (bias.diagonal(dim1=-2, dim2=-1) == 0).all()
    tail = alibi_bias(2, 5, 1)  # queries at positions 3 and 4
    assert tail[0, 0, 3] == 0 and tail[0, 1, 4] == 0
    with pytest.raises(ValueError, match="num_heads"):
        alibi_bias(3, 3, 0)

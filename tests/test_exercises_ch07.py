"""Chapter 7's checkers, beyond the generic tests in test_exercises.py (every reference passes,
every named mistake is caught, stubs are "not attempted yet")."""

import math

import pytest
import torch

from attnbook.exercises import ExerciseError, ch07


def test_sinusoidal_written_the_pytorch_tutorial_way_passes():
    def tutorial(positions, d, base):
        div_term = torch.exp(torch.arange(0, d, 2) * (-math.log(base) / d))
        pe = torch.zeros(len(positions), d)
        pe[:, 0::2] = torch.sin(positions[:, None] * div_term)
        pe[:, 1::2] = torch.cos(positions[:, None] * div_term)
        return pe

    assert ch07.check_sinusoidal_at(tutorial)


def test_rope_written_with_complex_numbers_passes():
    def complex_rope(queries, keys, q_positions, k_positions):
        def rotate(x, pos):
            d = x.shape[-1]
            omega = 10000.0 ** (-torch.arange(0, d, 2) / d)
            z = torch.view_as_complex(x.reshape(*x.shape[:-1], d // 2, 2).contiguous())
            return torch.view_as_real(z * torch.polar(torch.ones_like(omega),
                                                      pos[:, None] * omega)).flatten(-2)
        q, k = rotate(queries, q_positions), rotate(keys, k_positions)
        return q @ k.transpose(1, 2) / queries.shape[-1] ** 0.5

    assert ch07.check_rope_scores(complex_rope)


def test_window_mask_written_with_tril_and_triu_passes_and_float_is_refused():
    def with_tril(T, S, window):
        ones = torch.ones(T, S, dtype=torch.bool)
        return ones.tril(S - T) & ones.triu(S - T - window + 1)

    assert ch07.check_window_mask(with_tril)
    with pytest.raises(ExerciseError, match="boolean"):
        ch07.check_window_mask(lambda T, S, w: with_tril(T, S, w).float())


def test_self_attention_with_torch_sdpa_passes():
    import torch.nn.functional as F

    def with_sdpa(x, W_q, W_k, W_v, mask):
        q, k, v = x @ W_q, x @ W_k, x @ W_v
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        scores = q @ k.transpose(1, 2) / W_q.shape[1] ** 0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, -1e9)
        return out, torch.softmax(scores, -1) * (1 if mask is None else mask)

    assert ch07.check_self_attention(with_sdpa)


def test_self_attention_forgetting_the_weights_is_refused():
    with pytest.raises(ExerciseError, match="2 return values"):
        ch07.check_self_attention(lambda *a: ch07.self_attention_reference(*a)[0])

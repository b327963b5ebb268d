"""Chapter 11's checkers, beyond the generic tests in test_exercises.py (every reference passes,
every named mistake is caught, stubs are "not attempted yet")."""

import math

import pytest
import torch
import torch.nn.functional as F

from attnbook.efficient import online_softmax
from attnbook.exercises import ExerciseError, ch11
from attnbook.linear_attention import linear_attention


def test_other_correct_forms_pass():
    def update_by_logsumexp(m, l, scores):  # noqa: E741
        m_new = torch.maximum(m, scores.amax(-1))
        both = torch.cat([(torch.log(l) + m)[:, None], scores], -1)
        return m_new, torch.exp(torch.logsumexp(both, -1) - m_new)

    assert ch11.check_online_update(update_by_logsumexp)

    def tile_with_nan_to_num(acc, m, l, q, k, v, q_start, k_start, window):  # noqa: E741
        pos_q = torch.arange(q.shape[0]) + q_start
        pos_k = torch.arange(k.shape[0]) + k_start
        off = pos_q[:, None] - pos_k[None, :]
        s = (q @ k.T / math.sqrt(q.shape[1])).masked_fill((off < 0) | (off >= window),
                                                          float("-inf"))
        m_new = torch.maximum(m, s.amax(-1))
        p = torch.nan_to_num(torch.exp(s - m_new[:, None]))
        alpha = torch.nan_to_num(torch.exp(m - m_new), nan=1.0)
        return acc * alpha[:, None] + p @ v, m_new, l * alpha + p.sum(-1)

    assert ch11.check_window_tile(tile_with_nan_to_num)

    def append_by_view(cache, k_proj, num_kv_heads):
        B, t, _ = k_proj.shape
        new = k_proj.view(B, t, num_kv_heads, cache.shape[-1]).permute(0, 2, 1, 3)
        return torch.cat((cache, new), -2)

    assert ch11.check_append_kv(append_by_view)

    def decayed_parallel(q, k, v, gamma):  # the same numbers with a (T, T) decay mask
        T = q.shape[1]
        i = torch.arange(T)
        decay = (gamma ** (i[:, None] - i[None, :]).clamp(min=0)) * (i[:, None] >= i[None, :])
        w = ((F.elu(q) + 1) @ (F.elu(k) + 1).transpose(1, 2)) * decay  # (B, T, T)
        return (w @ v) / w.sum(-1, keepdim=True)

    assert ch11.check_decayed_linear_attention(decayed_parallel)


def test_the_nan_of_a_hidden_row_is_named():
    def tile_without_guard(acc, m, l, q, k, v, q_start, k_start, window):  # noqa: E741
        pos_q = torch.arange(q.shape[0]) + q_start
        pos_k = torch.arange(k.shape[0]) + k_start
        off = pos_q[:, None] - pos_k[None, :]
        s = (q @ k.T / math.sqrt(q.shape[1])).masked_fill((off < 0) | (off >= window),
                                                          float("-inf"))
        m_new = torch.maximum(m, s.amax(-1))
        p = torch.exp(s - m_new[:, None])
        alpha = torch.exp(m - m_new)
        return acc * alpha[:, None] + p @ v, m_new, l * alpha + p.sum(-1)

    with pytest.raises(ExerciseError, match="nan"):
        ch11.check_window_tile(tile_without_guard)


def test_the_online_update_folds_into_softmax():
    x = torch.randn(3, 12) * 5
    m, l = torch.full((3,), float("-inf")), torch.zeros(3)  # noqa: E741
    for j in range(0, 12, 5):
        m, l = ch11.online_update_reference(m, l, x[:, j:j + 5])  # noqa: E741
    torch.testing.assert_close(torch.exp(x - m[:, None]) / l[:, None], x.softmax(-1))
    torch.testing.assert_close(online_softmax(x), x.softmax(-1))


def test_the_decay_reference_with_gamma_one_is_causal_linear_attention():
    q, k, v = torch.randn(2, 7, 4), torch.randn(2, 7, 4), torch.randn(2, 7, 3)
    torch.testing.assert_close(ch11.decayed_linear_attention_reference(q, k, v, 1.0),
                               linear_attention(q, k, v, causal=True))

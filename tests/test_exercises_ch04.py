"""Chapter 4's checkers, beyond the generic tests in test_exercises.py (every reference passes,
every named mistake is caught, stubs are "not attempted yet")."""

import pytest
import torch
import torch.nn.functional as F

from attnbook.exercises import ExerciseError, ch04


def test_sliding_window_other_correct_forms_and_a_float_mask():
    def by_two_triangles(T, w):
        ones = torch.ones(T, T, dtype=torch.bool)
        return ones.tril(w) & ones.triu(-w)

    assert ch04.check_sliding_window_mask(by_two_triangles)
    with pytest.raises(ExerciseError, match="boolean tensor"):
        ch04.check_sliding_window_mask(lambda T, w: by_two_triangles(T, w).float())


def _by_hand(q, k, v, query_lens, key_lens):
    T, S = q.shape[1], k.shape[1]
    keep = ((torch.arange(T)[None, :, None] < query_lens[:, None, None])
            & (torch.arange(S)[None, None, :] < key_lens[:, None, None]))  # (B, T, S)
    scores = (q @ k.transpose(1, 2) / q.shape[-1] ** 0.5).masked_fill(~keep, -1e9)
    weights = torch.softmax(scores, dim=-1) * keep
    return weights @ v, weights


def test_padded_attention_by_hand_passes_and_matches_torch_on_real_rows():
    assert ch04.check_padded_attention(_by_hand)
    q, k, v, ql, kl = ch04.PADDED_CASES[0].args
    out, _ = _by_hand(q, k, v, ql, kl)
    keys_keep = torch.arange(k.shape[1])[None, :] < kl[:, None]  # (B, S)
    torch_out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys_keep[:, None, :])
    real = torch.arange(q.shape[1])[None, :] < ql[:, None]  # (B, T)
    torch.testing.assert_close(out[real], torch_out[real])


def test_keep_mask_through_torch_and_multihead_conventions():
    def via_torch(q, k, v, keep):  # torch's sdpa: boolean, True = attend
        allowed = keep.bool()
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        weights = torch.softmax((q @ k.transpose(1, 2) / q.shape[-1] ** 0.5)
                                .masked_fill(~allowed, -1e9), -1) * allowed
        return out.nan_to_num() * allowed.any(-1, keepdim=True), weights

    assert ch04.check_keep_mask_attention(via_torch)


def test_the_buggy_attention_really_has_both_bugs():
    q, k, v, n = ch04.FIXED_CASES[0].args
    _, weights = ch04.buggy_scaled_attention(q, k, v, n)
    assert (weights[1, :, 2:] > 0).any()  # padded keys of the second sequence get weight
    _, right = ch04.fixed_scaled_attention_reference(q, k, v, n)
    assert (right[1, :, 2:] == 0).all()


def test_fixed_attention_must_return_weights_too():
    with pytest.raises(ExerciseError, match="expected 2 return values"):
        ch04.check_fixed_scaled_attention(
            lambda *a: ch04.fixed_scaled_attention_reference(*a)[0])

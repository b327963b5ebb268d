"""Chapter 8's checkers, beyond the generic tests in test_exercises.py (every reference passes,
every named mistake is caught, stubs are "not attempted yet")."""

import pytest
import torch

from attnbook.exercises import ExerciseError, ch08
from attnbook.multihead import merge_heads, split_heads


def test_other_correct_forms_pass():
    # via the package: transpose to batch-first, then split / merge
    assert ch08.check_split_heads_seq_first(lambda x, h: split_heads(x.transpose(0, 1), h))
    assert ch08.check_merge_heads_seq_first(lambda x: merge_heads(x).transpose(0, 1))

    def expand_by_index(k, g, h):
        B, S, d_kv = k.shape
        heads = k.reshape(B, S, g, d_kv // g).transpose(1, 2)
        return heads[:, torch.arange(h) // (h // g)]

    assert ch08.check_grouped_keys_to_heads(expand_by_index)


def _forward_minus_inf(x, W_q, W_k, W_v, W_o, h, mask=None):
    B, T, d = x.shape
    q, k, v = (split_heads(x @ W, h) for W in (W_q, W_k, W_v))
    scores = q @ k.transpose(-2, -1) / (d // h) ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return merge_heads(scores.softmax(-1) @ v) @ W_o


def test_nan_on_a_fully_masked_query_is_named():
    with pytest.raises(ExerciseError, match="nan for a query that may attend nowhere"):
        ch08.check_multihead_forward(_forward_minus_inf)


def test_ablation_leaves_the_module_unchanged():
    mha, x, head = ch08.ABLATE_CASES[0].args
    before = {k: v.clone() for k, v in mha.state_dict().items()}
    ch08.ablate_head_reference(mha, x, head)
    for k, v in mha.state_dict().items():
        assert torch.equal(v, before[k]), k

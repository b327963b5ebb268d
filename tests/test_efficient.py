"""Chapter 11's package code: tiled and naive attention equal PyTorch's, the memory
measurement sees the (T, S) matrix, the KV cache reproduces full recomputation, banded
and linear attention equal their definitions."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from attnbook.efficient import (
    causal_mask_end,
    naive_attention,
    online_softmax,
    peak_extra_memory,
    sliding_window_attention,
    sliding_window_mask,
    tiled_attention,
)
from attnbook.kv_cache import KVCache, greedy_generate, kv_cache_bytes, lm_forward_cached
from attnbook.linear_attention import linear_attention, linear_attention_recurrent
from attnbook.transformer import LMConfig, TransformerLM


def _qkv(T=37, S=37, lead=(2, 3), d=8, d_v=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*lead, T, d, generator=g), torch.randn(*lead, S, d, generator=g),
            torch.randn(*lead, S, d_v, generator=g))


@pytest.mark.parametrize("block_size", [1, 5, 16, 64])
@pytest.mark.parametrize("causal", [False, True])
def test_tiled_attention_equals_sdpa(block_size, causal):
    q, k, v = _qkv()
    want = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert_close(tiled_attention(q, k, v, block_size, causal=causal), want,
                 atol=1e-5, rtol=1e-5)
    assert_close(naive_attention(q, k, v, causal=causal), want, atol=1e-5, rtol=1e-5)


def test_causal_with_fewer_queries_is_aligned_to_the_end():
    q, k, v = _qkv(T=5, S=20)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask_end(5, 20))
    assert_close(tiled_attention(q, k, v, 4, causal=True), want)
    assert_close(naive_attention(q, k, v, causal=True), want)
    assert causal_mask_end(1, 20).all()  # one new query sees every cached key
    assert torch.equal(causal_mask_end(6, 6), torch.ones(6, 6, dtype=torch.bool).tril())


def test_bad_block_size_and_causal_shapes_are_refused():
    q, k, v = _qkv(T=8, S=4)
    with pytest.raises(ValueError, match="block_size"):
        tiled_attention(q, k[..., :8, :], v, block_size=0)
    with pytest.raises(ValueError, match="T = 8"):
        tiled_attention(q, k, v, causal=True)


def test_online_softmax_survives_huge_scores():
    x = torch.tensor([[1000.0, 999.0, -5.0], [0.0, 0.0, 0.0]])
    assert_close(online_softmax(x), x.softmax(-1))


def test_peak_memory_sees_the_score_matrix_and_tiling_avoids_it():
    q, k, v = _qkv(T=512, S=512, lead=(1,), d=16, d_v=16)
    naive = peak_extra_memory(naive_attention, q, k, v)
    tiled = peak_extra_memory(tiled_attention, q, k, v, 64)
    assert naive >= 512 * 512 * 4  # at least one float32 (T, S) matrix
    assert tiled < 512 * 512 * 4 / 4
    assert peak_extra_memory(lambda: None) == 0


def test_sliding_window():
    m = sliding_window_mask(6, 3)
    assert m.sum(1).tolist() == [1, 2, 3, 3, 3, 3]
    assert not m.triu(1).any()
    q, k, v = _qkv()
    assert_close(sliding_window_attention(q, k, v, 4),
                 F.scaled_dot_product_attention(q, k, v, attn_mask=sliding_window_mask(37, 4)))
    assert_close(sliding_window_attention(q, k, v, 100),
                 F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_linear_attention_forms_agree():
    q, k, v = _qkv(T=11, S=11)
    assert_close(linear_attention(q, k, v, causal=True), linear_attention_recurrent(q, k, v))
    phi = lambda x: F.elu(x) + 1  # noqa: E731
    w = phi(q) @ phi(k).transpose(-2, -1)  # (..., T, S)
    assert_close(linear_attention(q, k, v), (w / w.sum(-1, keepdim=True)) @ v)


def _lm(norm_first=True):
    torch.manual_seed(0)
    return TransformerLM(LMConfig(20, d_model=16, num_heads=2, d_ff=32, num_layers=2,
                                  max_len=40, norm_first=norm_first)).eval()


@pytest.mark.parametrize("norm_first", [True, False])
def test_kv_cache_gives_the_same_logits_and_tokens(norm_first):
    model = _lm(norm_first)
    tokens = torch.randint(1, 20, (2, 12), generator=torch.Generator().manual_seed(1))
    cache = KVCache(2)
    parts = [lm_forward_cached(model, tokens[:, :5], cache),
             lm_forward_cached(model, tokens[:, 5:6], cache),
             lm_forward_cached(model, tokens[:, 6:], cache)]
    assert cache.length == 12 and cache.numbers() == 2 * 2 * 2 * 12 * 16
    assert_close(torch.cat(parts, 1), model(tokens)[0])
    prompt = tokens[:, :3]
    assert torch.equal(greedy_generate(model, prompt, 20),
                       greedy_generate(model, prompt, 20, use_cache=False))


def test_a_cache_of_the_wrong_shape_is_refused():
    cache = KVCache(1)
    cache.append(0, torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match="cache of layer 0"):
        cache.append(0, torch.zeros(1, 4, 1, 2), torch.zeros(1, 4, 1, 2))
    with pytest.raises(ValueError, match="cache has 1 layers"):
        lm_forward_cached(_lm(), torch.ones(1, 2, dtype=torch.long), cache)


def test_cache_bytes_of_a_published_size():
    assert kv_cache_bytes(32, 32, 128) == 2**19  # 0.5 MiB per token in 16 bits
    assert kv_cache_bytes(32, 8, 128) * 4 == kv_cache_bytes(32, 32, 128)

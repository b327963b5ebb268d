"""Chapter 8's multi-head attention: heads split and merged, equal to nn.MultiheadAttention
(outputs, weights, gradients, masks, kdim/vdim), both paths equal, GQA/MQA, errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from attnbook.attention import causal_mask
from attnbook.multihead import (
    MultiHeadAttention,
    copy_from_torch,
    expand_kv,
    kv_cache_numbers,
    merge_heads,
    num_parameters,
    split_heads,
)


def _pair(d=16, h=4, kdim=None, vdim=None, bias=True, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(d, h, batch_first=True, kdim=kdim, vdim=vdim, bias=bias,
                                   dtype=dtype)
    if bias:  # PyTorch starts its biases at zero; make them count
        with torch.no_grad():
            theirs.in_proj_bias.normal_()
            theirs.out_proj.bias.normal_()
    ours = MultiHeadAttention(d, h, kdim=kdim, vdim=vdim, bias=bias).to(dtype)
    return copy_from_torch(ours, theirs), theirs


def _inputs(B=3, T=5, S=7, d=16, kdim=None, vdim=None, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, T, d, generator=g, dtype=dtype),
            torch.randn(B, S, kdim or d, generator=g, dtype=dtype),
            torch.randn(B, S, vdim or d, generator=g, dtype=dtype))


def test_split_heads_keeps_positions_and_cuts_features():
    x = torch.arange(2 * 3 * 8.0).reshape(2, 3, 8)  # (B, T, d)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 2)
    for i in range(4):  # head i at position t holds features 2i, 2i+1 of position t
        assert_close(heads[:, i], x[..., 2 * i: 2 * i + 2])
    assert_close(merge_heads(heads), x)


def test_split_heads_errors_name_both_numbers():
    with pytest.raises(ValueError, match=r"10.*3"):
        split_heads(torch.zeros(1, 2, 10), 3)
    with pytest.raises(ValueError, match="3 dimensions"):
        split_heads(torch.zeros(2, 10), 2)
    with pytest.raises(TypeError, match="x"):
        split_heads([[1.0, 2.0]], 2)
    with pytest.raises(ValueError, match=r"d_model = 10.*num_heads = 4"):
        MultiHeadAttention(10, 4)
    with pytest.raises(TypeError, match="d_model should be an int"):
        MultiHeadAttention("8", 2)
    with pytest.raises(TypeError, match="d_model should be an int"):
        MultiHeadAttention(None, 2)


def test_expand_kv_is_repeat_interleave_and_checks_groups():
    x = torch.arange(2.0).reshape(1, 2, 1, 1).expand(1, 2, 3, 1)  # kv heads 0 and 1
    out = expand_kv(x, 6)
    assert out[0, :, 0, 0].tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match=r"num_heads = 5.*g = 2"):
        expand_kv(x, 5)
    with pytest.raises(ValueError, match=r"num_kv_heads = 3.*num_heads = 4"):
        MultiHeadAttention(16, 4, num_kv_heads=3)


@pytest.mark.parametrize("kdim,vdim", [(None, None), (12, 20)])
@pytest.mark.parametrize("masking", ["none", "padding", "causal"])
def test_equals_torch_outputs_weights_and_gradients(kdim, vdim, masking):
    ours, theirs = _pair(kdim=kdim, vdim=vdim)
    q, k, v = _inputs(kdim=kdim, vdim=vdim)
    T, S = q.shape[1], k.shape[1]
    ignore = torch.tensor([[False] * 7, [False] * 5 + [True] * 2, [False] * 1 + [True] * 6])
    kw_theirs, mask = {}, None
    if masking == "padding":  # PyTorch: True = ignore; ours: True = may attend
        kw_theirs, mask = {"key_padding_mask": ignore}, ~ignore[:, None, None, :]
    elif masking == "causal":
        kw_theirs, mask = {"attn_mask": ~causal_mask(T, S)}, causal_mask(T, S)
    ins_a = [t.clone().requires_grad_() for t in (q, k, v)]
    ins_b = [t.clone().requires_grad_() for t in (q, k, v)]
    out_t, w_t = theirs(*ins_a, average_attn_weights=False, **kw_theirs)
    out_o, w_o = ours(*ins_b, mask=mask, need_weights=True)
    out_f, none = ours(q, k, v, mask=mask)  # fused path
    assert none is None
    assert_close(out_o, out_t, atol=1e-5, rtol=1e-5)
    assert_close(w_o, w_t, atol=1e-5, rtol=1e-5)
    assert_close(out_f, out_t, atol=1e-5, rtol=1e-5)
    _, w_avg = theirs(q, k, v, **kw_theirs)  # head-averaged by default
    assert_close(w_o.mean(dim=1), w_avg, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out_t)
    (out_t * g).sum().backward()
    (out_o * g).sum().backward()
    for a, b in zip(ins_a, ins_b, strict=True):
        assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-5)
    assert_close(ours.W_o.weight.grad, theirs.out_proj.weight.grad, atol=1e-5, rtol=1e-5)
    assert_close(ours.W_q.bias.grad, theirs.in_proj_bias.grad[:16], atol=1e-5, rtol=1e-5)


def test_equals_torch_in_float64_without_bias():
    ours, theirs = _pair(bias=False, dtype=torch.float64)
    q, k, v = _inputs(dtype=torch.float64)
    out_t, _ = theirs(q, k, v)
    out_o, _ = ours(q, k, v)
    assert_close(out_o, out_t, atol=1e-10, rtol=1e-10)


def test_fully_masked_query_gives_zero_weights_no_nan():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2)
    q, k, v = _inputs(B=2, T=4, S=3, d=8)
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[2] = False  # query 2 may look nowhere
    for need in (True, False):
        x = q.clone().requires_grad_()
        out, w = mha(x, k, v, mask=mask, need_weights=need)
        assert_close(out[:, 2], mha.W_o.bias.expand(2, 8))  # zero context, only the bias
        if need:
            assert (w[:, :, 2] == 0).all()
        out.sum().backward()
        assert torch.isfinite(x.grad).all()


def test_fused_and_explicit_paths_agree_with_gqa():
    torch.manual_seed(0)
    mha = MultiHeadAttention(24, 6, num_kv_heads=2, kdim=10)
    q, k, v = _inputs(d=24, kdim=10)
    mask = causal_mask(5, 7)
    a, _ = mha(q, k, v, mask=mask)
    b, w = mha(q, k, v, mask=mask, need_weights=True)
    assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert w.shape == (3, 6, 5, 7)
    assert mha.W_k.out_features == 8 and mha.W_v.out_features == 8  # 2 groups of d_h = 4


def test_gqa_with_h_groups_is_mha_and_with_one_group_is_mqa():
    torch.manual_seed(0)
    d, h = 16, 4
    q, k, v = _inputs(d=d)
    mha = MultiHeadAttention(d, h)
    gqa = MultiHeadAttention(d, h, num_kv_heads=h)
    gqa.load_state_dict(mha.state_dict())
    assert_close(gqa(q, k, v)[0], mha(q, k, v)[0])
    mqa = MultiHeadAttention(d, h, num_kv_heads=1)
    # MQA as MHA whose every head uses the same key/value projection
    tiled = MultiHeadAttention(d, h)
    with torch.no_grad():
        for name in ("W_q", "W_o"):
            getattr(tiled, name).load_state_dict(getattr(mqa, name).state_dict())
        for name in ("W_k", "W_v"):
            small, big = getattr(mqa, name), getattr(tiled, name)
            big.weight.copy_(small.weight.repeat(h, 1))
            big.bias.copy_(small.bias.repeat(h))
    assert_close(mqa(q, k, v)[0], tiled(q, k, v)[0], atol=1e-6, rtol=1e-5)


def test_fused_path_calls_sdpa(monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8)
    mha(x, x, x)
    assert calls == [1]
    mha(x, x, x, need_weights=True)
    assert calls == [1]


def test_bad_inputs_get_clear_errors():
    mha = MultiHeadAttention(16, 4, kdim=12)
    q, k, v = _inputs(d=16, kdim=12)
    with pytest.raises(ValueError, match=r"queries have 20 features.*d_model=16"):
        mha(torch.randn(3, 5, 20), k, v)
    with pytest.raises(ValueError, match=r"keys have 16 features.*kdim=12"):
        mha(q, v, v)
    with pytest.raises(TypeError, match=r"values have dtype torch.float64.*float32"):
        mha(q, k, v.double())
    with pytest.raises(ValueError, match=r"mask of shape \(7,\)"):
        mha(q, k, v, mask=torch.ones(7, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(5, 6\).*\(3, 4, 5, 7\)"):
        mha(q, k, v, mask=torch.ones(5, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(2, 1, 1, 7\)"):
        mha(q, k, v, mask=torch.ones(2, 1, 1, 7, dtype=torch.bool))
    with pytest.raises(TypeError, match="boolean"):
        mha(q, k, v, mask=torch.ones(5, 7))
    with pytest.raises(TypeError, match="queries"):
        mha(q.numpy(), k, v)
    with pytest.raises(ValueError, match="keys"):
        mha(q, k[:2], v)


def test_copy_from_torch_refuses_mismatched_modules():
    theirs = nn.MultiheadAttention(16, 4, batch_first=True)
    with pytest.raises(ValueError, match="differ"):
        copy_from_torch(MultiHeadAttention(16, 2), theirs)
    with pytest.raises(ValueError, match="differ"):
        copy_from_torch(MultiHeadAttention(16, 4, num_kv_heads=2), theirs)
    with pytest.raises(TypeError, match="theirs"):
        copy_from_torch(MultiHeadAttention(16, 4), nn.Linear(16, 16))


def test_parameter_count_does_not_depend_on_heads():
    counts = {h: num_parameters(MultiHeadAttention(64, h)) for h in (1, 2, 4, 8)}
    assert set(counts.values()) == {4 * (64 * 64 + 64)}
    assert num_parameters(MultiHeadAttention(64, 8, num_kv_heads=1)) == 2 * (64 * 64 + 64) \
        + 2 * (64 * 8 + 8)
    with pytest.raises(TypeError, match="module should be a torch.nn.Module"):
        num_parameters("mha")


def test_kv_cache_numbers():
    assert kv_cache_numbers(num_layers=2, num_kv_heads=4, d_head=16) == 256
    with pytest.raises(ValueError, match="num_kv_heads"):
        kv_cache_numbers(2, 0, 16)

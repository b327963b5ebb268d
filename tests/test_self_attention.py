"""Chapter 7's self-attention: against PyTorch, masks, equivariance, the order classifier."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from attnbook.attention import causal_mask
from attnbook.positional import apply_rope
from attnbook.self_attention import OrderClassifier, OrderClassifierConfig, SelfAttention


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("d_k, d_v", [(None, None), (4, 6), (6, 3)])
def test_matches_its_formula_and_shapes(d_k, d_v):
    torch.manual_seed(0)
    sa = SelfAttention(6, d_k, d_v)
    x = _x(2, 5, 6)
    out, w = sa(x)
    dk = sa.d_k
    q, k, v = x @ sa.W_q.weight.T, x @ sa.W_k.weight.T, x @ sa.W_v.weight.T
    ref_w = torch.softmax(q @ k.transpose(1, 2) / dk**0.5, dim=-1)
    assert_close(w, ref_w)
    assert_close(out, ref_w @ v)
    assert out.shape == (2, 5, sa.d_v) and w.shape == (2, 5, 5)


@pytest.mark.parametrize("causal", [False, True])
def test_equals_torch_multihead_attention_with_one_head(causal):
    torch.manual_seed(0)
    d = 8
    sa = SelfAttention(d, causal=causal, bias=True)
    mha = nn.MultiheadAttention(d, num_heads=1, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([sa.W_q.weight, sa.W_k.weight, sa.W_v.weight]))
        mha.in_proj_bias.copy_(torch.cat([sa.W_q.bias, sa.W_k.bias, sa.W_v.bias]))
        mha.out_proj.weight.copy_(torch.eye(d))
        mha.out_proj.bias.zero_()
    x = _x(3, 6, d)
    mask = ~causal_mask(6) if causal else None  # PyTorch's MHA: True = NOT allowed
    ref, ref_w = mha(x, x, x, attn_mask=mask)
    out, w = sa(x)
    assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert_close(w, ref_w, atol=1e-5, rtol=1e-5)


def test_causal_outputs_ignore_the_future():
    torch.manual_seed(0)
    sa = SelfAttention(4, causal=True)
    x = _x(1, 7, 4)
    y = x.clone()
    y[:, 4:] = _x(1, 3, 4, seed=5) * 100
    out_x, w = sa(x)
    out_y, _ = sa(y)
    assert_close(out_x[:, :4], out_y[:, :4])
    assert (out_x[:, 4:] - out_y[:, 4:]).abs().max() > 1e-3
    assert (w.triu(1) == 0).all()


def test_extra_mask_combines_with_causal():
    torch.manual_seed(0)
    sa = SelfAttention(4, causal=True)
    keep = torch.tensor([True, True, False, True, True])  # key 2 is padding
    out, w = sa(_x(2, 5, 4), mask=keep)
    assert (w[..., 2] == 0).all() and (w.triu(1) == 0).all()
    assert_close(w.sum(-1), torch.ones(2, 5))


def test_permutation_equivariance_without_positions_and_not_with_rope():
    torch.manual_seed(0)
    x, perm = _x(2, 6, 8), torch.tensor([3, 0, 5, 1, 4, 2])
    sa = SelfAttention(8)
    out, w = sa(x)
    out_p, w_p = sa(x[:, perm])
    assert_close(out_p, out[:, perm])
    assert_close(w_p, w[:, perm][:, :, perm])
    rope = SelfAttention(8, rope=True)
    assert (rope(x[:, perm])[0] - rope(x)[0][:, perm]).abs().max() > 1e-3


def test_rope_layer_rotates_queries_and_keys():
    torch.manual_seed(0)
    sa = SelfAttention(8, rope=True)
    x = _x(2, 5, 8)
    q, k = apply_rope(sa.W_q(x)), apply_rope(sa.W_k(x))
    ref = F.scaled_dot_product_attention(q, k, sa.W_v(x))
    assert_close(sa(x)[0], ref, atol=1e-5, rtol=1e-5)


def test_bad_input():
    sa = SelfAttention(8)
    with pytest.raises(ValueError, match=r"x have 6 features.*d_model=8"):
        sa(torch.randn(2, 5, 6))
    with pytest.raises(TypeError, match=r"x should be a torch.Tensor.*torch.as_tensor"):
        sa(torch.randn(2, 5, 8).numpy())
    with pytest.raises(TypeError, match=r"x have dtype torch.float64.*float32"):
        sa(torch.randn(2, 5, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="B, T, d_model"):
        sa(torch.randn(5, 8))
    with pytest.raises(TypeError, match="floating"):
        sa(torch.ones(2, 5, 8, dtype=torch.long))
    with pytest.raises(TypeError, match="boolean"):
        sa(torch.randn(2, 5, 8), mask=torch.ones(5, 5))
    with pytest.raises(ValueError, match="d_k"):
        SelfAttention(8, d_k=5, rope=True)
    with pytest.raises(ValueError, match="d_model"):
        SelfAttention(0)
    with pytest.raises(TypeError, match="d_v"):
        SelfAttention(8, d_v=2.0)


@pytest.mark.parametrize("encoding", ["none", "sinusoidal", "learned", "rope"])
def test_order_classifier_shapes_and_invariance(encoding):
    torch.manual_seed(0)
    model = OrderClassifier(OrderClassifierConfig(6, 10, d_model=8, num_layers=2,
                                                  encoding=encoding))
    tokens = torch.randint(6, (3, 7))
    logits, weights = model(tokens)
    assert logits.shape == (3, 2) and len(weights) == 2 and weights[0].shape == (3, 7, 7)
    perm = torch.tensor([6, 2, 0, 1, 5, 3, 4])
    moved = (model(tokens[:, perm])[0] - logits).abs().max()
    if encoding == "none":
        assert moved < 1e-5  # mean pooling of an equivariant layer: invariant
    else:
        assert moved > 1e-4


def test_order_classifier_bad_input():
    with pytest.raises(ValueError, match="encoding"):
        OrderClassifier(OrderClassifierConfig(6, 10, encoding="alibi"))
    model = OrderClassifier(OrderClassifierConfig(6, 4, d_model=8, encoding="learned"))
    with pytest.raises(ValueError, match="max_len = 4"):
        model(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="config should be an OrderClassifierConfig"):
        OrderClassifier(None)
    with pytest.raises(TypeError, match="config.num_tokens"):
        OrderClassifier(OrderClassifierConfig("6", 10))
    with pytest.raises(ValueError, match="config.max_len"):
        OrderClassifier(OrderClassifierConfig(6, 0))
    with pytest.raises(TypeError, match=r"tokens should be a torch.Tensor"):
        model([[0, 1, 2]])
    with pytest.raises(TypeError, match="tokens should hold integers"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"token id 6.*6 ids"):
        model(torch.tensor([[0, 6, 2]]))
    with pytest.raises(ValueError, match=r"token id -1"):
        model(torch.tensor([[0, -1, 2]]))
    with pytest.raises(ValueError, match="tokens"):
        model(torch.zeros(1, 3, dtype=torch.long)[0])


def test_order_classifier_causal_layers_see_only_the_past():
    torch.manual_seed(0)
    model = OrderClassifier(OrderClassifierConfig(6, 8, d_model=8, causal=True))
    _, (weights,) = model(torch.randint(6, (2, 5)))
    assert (weights.triu(1) == 0).all() and model.layers[0].causal

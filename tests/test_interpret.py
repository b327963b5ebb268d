"""Chapter 12's package code: rollout, flow, occlusion, gradient x input, rank agreement
(attnbook.interpret), the class-token encoder, the Jain & Wallace classifier and its
distances (attnbook.faithfulness) and the majority task."""

import math

import pytest
import torch
from scipy.spatial.distance import jensenshannon
from torch.testing import assert_close

from attnbook.cls_encoder import ClsEncoder, ClsEncoderConfig
from attnbook.data.majority_task import make_majority_batch
from attnbook.faithfulness import (
    AttentionClassifier,
    adversarial_attention,
    js_distance,
    tv_distance,
)
from attnbook.interpret import (
    attention_flow,
    attention_rollout,
    gradient_x_input,
    leave_one_out,
    rank_agreement,
    residual_maps,
)


def _maps(B=2, L=3, h=2, T=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, L, h, T, T, generator=g).softmax(-1)


def _encoder():
    torch.manual_seed(0)
    return ClsEncoder(ClsEncoderConfig(vocab_size=6, num_classes=3, d_model=8,
                                       num_heads=2, d_ff=16, num_layers=2,
                                       max_len=6)).eval()


def test_rollout_is_the_product_of_residual_maps_from_the_first_layer_up():
    w = _maps()
    A = w.mean(2)
    eye = torch.eye(4)
    want = ((A[:, 2] + eye) / 2) @ ((A[:, 1] + eye) / 2) @ ((A[:, 0] + eye) / 2)
    R = attention_rollout(w)
    assert_close(R, want)
    assert_close(R.sum(-1), torch.ones(2, 4))
    assert_close(residual_maps(w)[:, 0], (A[:, 0] + eye) / 2)


def test_rollout_of_attention_to_oneself_is_the_identity():
    w = torch.eye(5).expand(1, 2, 3, 5, 5)
    assert_close(attention_rollout(w), torch.eye(5)[None])


def test_flow_through_one_layer_is_the_edge_capacity():
    w = _maps(B=1, L=1)
    flow = attention_flow(w, query=2)
    assert_close(flow[0], residual_maps(w)[0, 0, 2])


def test_flow_is_at_most_one_and_finds_paths_through_the_layers():
    w = _maps(B=2, L=2, T=3, seed=1)
    flow = attention_flow(w, query=0)  # (B, T)
    assert flow.shape == (2, 3)
    assert (flow <= 1 + 1e-6).all() and (flow > 0).all()
    # a chain: 0 reads 1 in layer 2, 1 reads 2 in layer 1 -> flow 0 -> 2 is min(1/2, 1/2)
    chain = torch.zeros(1, 2, 1, 3, 3)
    chain[0, 0, 0] = torch.tensor([[1.0, 0, 0], [0, 0, 1], [0, 0, 1]])
    chain[0, 1, 0] = torch.tensor([[0, 1.0, 0], [0, 1, 0], [0, 0, 1]])
    assert_close(attention_flow(chain)[0, 2], torch.tensor(0.5))


def test_bad_maps_and_query_are_refused():
    with pytest.raises(ValueError, match="each row"):
        attention_rollout(torch.rand(1, 1, 1, 3, 3) + 1)
    with pytest.raises(ValueError, match="query"):
        attention_flow(_maps(), query=4)


def test_a_masked_position_is_invisible_to_the_encoder():
    model = _encoder()
    tokens = torch.tensor([[1, 2, 3, 4]])
    changed = torch.tensor([[1, 5, 3, 4]])  # position 1 differs ...
    keep = torch.tensor([[True, False, True, True]])  # ... and is removed
    with torch.no_grad():
        assert_close(model(tokens, keep)[0], model(changed, keep)[0])
        assert not torch.allclose(model(tokens)[0], model(changed)[0])


def test_leave_one_out_is_the_drop_of_the_predicted_class():
    model = _encoder()
    tokens = torch.tensor([[1, 2, 3, 4], [0, 0, 5, 1]])
    occ = leave_one_out(model, tokens)
    with torch.no_grad():
        p = model(tokens)[0].softmax(-1)
        y = p.argmax(-1)
        keep = torch.ones(2, 4, dtype=torch.bool)
        keep[:, 2] = False
        p2 = model(tokens, keep)[0].softmax(-1)
    assert_close(occ[:, 2], p[[0, 1], y] - p2[[0, 1], y])


def test_gradient_x_input_sums_gradient_times_embedding():
    model = _encoder()
    tokens = torch.tensor([[1, 2, 3]])
    x = model.embed(tokens).detach().requires_grad_(True)
    log_p = model.classify(x)[0].log_softmax(-1)
    log_p[0, log_p.argmax()].backward()
    assert_close(gradient_x_input(model, tokens), (x.grad * x).sum(-1).detach())


def test_rank_agreement():
    a = torch.tensor([[1.0, 2, 3, 4], [1.0, 1, 1, 1]])
    rho = rank_agreement(a, torch.tensor([[10.0, 20, 30, 40], [1.0, 2, 3, 4]]))
    assert rho[0] == pytest.approx(1.0) and math.isnan(rho[1])
    assert rank_agreement(a[:1], -a[:1])[0] == pytest.approx(-1.0)


def test_js_distance_matches_scipy_and_its_bounds():
    g = torch.Generator().manual_seed(0)
    p, q = torch.rand(5, 6, generator=g).softmax(-1), torch.rand(5, 6, generator=g).softmax(-1)
    want = torch.tensor([jensenshannon(a, b, base=2) for a, b in zip(p, q, strict=True)])
    assert_close(js_distance(p, q), want.float(), atol=1e-5, rtol=1e-4)
    assert_close(js_distance(p, q), js_distance(q, p))
    disjoint = js_distance(torch.tensor([1.0, 0]), torch.tensor([0.0, 1]))
    assert disjoint.item() == pytest.approx(1.0)
    assert js_distance(p, p).abs().max() < 1e-3


def test_tv_distance():
    p, q = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.0, 0.5, 0.5])
    assert tv_distance(p, q).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same shape"):
        tv_distance(p, q[:2])


def test_attention_classifier_weights():
    torch.manual_seed(0)
    tokens = torch.tensor([[1, 2, 3, 4, 0]])
    logits, w = AttentionClassifier(5, 3)(tokens)
    assert logits.shape == (1, 3)
    assert_close(w.sum(-1), torch.ones(1))
    _, u = AttentionClassifier(5, 3, uniform=True)(tokens)
    assert_close(u, torch.full((1, 5), 0.2))
    model = AttentionClassifier(5, 3)
    one_hot = torch.tensor([[0.0, 0, 1, 0, 0]])
    x = model.features(tokens)
    assert_close(model(tokens, one_hot)[0], model.out(x[:, 2]))


def test_adversarial_attention_moves_the_weights_not_the_output():
    torch.manual_seed(0)
    model = AttentionClassifier(6, 2, d=8).eval()
    tokens = torch.randint(6, (8, 7), generator=torch.Generator().manual_seed(1))
    adv = adversarial_attention(model, tokens, eps=0.01, steps=200)
    with torch.no_grad():
        logits, own = model(tokens)
        moved = tv_distance(model(tokens, adv)[0].softmax(-1), logits.softmax(-1))
    assert_close(adv.sum(-1), torch.ones(8))
    assert (moved <= 0.02).all()
    assert js_distance(adv, own).median() > 0.5
    with pytest.raises(ValueError, match="eps"):
        adversarial_attention(model, tokens, eps=-1.0)


def test_majority_labels_count_small_tokens():
    b = make_majority_batch(50, length=7, num_tokens=6, seed=0)
    assert torch.equal(b.labels, ((b.tokens < 3).sum(1) >= 4).long())
    assert 0 < b.labels.float().mean() < 1
    with pytest.raises(ValueError, match="odd"):
        make_majority_batch(3, length=8)

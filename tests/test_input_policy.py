"""The package's input policy by kind of input (issue 28), and its two numerical bugs.

One rule per kind of input a function can take for something else and answer plausibly,
each in ``attnbook.shapes`` and called from the public functions: "empty"
(``check_nonempty``), "log-probabilities expected" (``check_log_probs``), "a distribution
expected" (``check_distribution``), devices (``check_device``) and copies of PyTorch's
modules (``check_copy_options``). For each: good input passes, bad input is refused with
a message that names the argument. Then the nan policies, the errors that used to show
PyTorch's internals, and the numerical bugs (RoPE in float64, the online softmax on a row
that starts with -inf, the tiled-attention figure's title).
"""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.testing import assert_close  # noqa: E402

from attnbook import shapes  # noqa: E402
from attnbook.attention import causal_mask, masked_softmax, scaled_dot_product_attention  # noqa: E402
from attnbook.data.grammar import make_monolingual  # noqa: E402
from attnbook.data.regression import true_function  # noqa: E402
from attnbook.data.translation import (  # noqa: E402
    generate_corpus,
    make_batch,
    make_corpus,
    source_vocab,
    target_vocab,
)
from attnbook.decoding import (  # noqa: E402
    beam_search,
    beam_step,
    greedy,
    sample,
    sequence_log_probs,
)
from attnbook.diagrams_efficient import draw_tiled_attention  # noqa: E402
from attnbook.efficient import causal_mask_end, online_softmax, sliding_window_mask  # noqa: E402
from attnbook.env import get_device  # noqa: E402
from attnbook.faithfulness import AttentionClassifier, js_distance, tv_distance  # noqa: E402
from attnbook.hard_attention import reinforce_loss  # noqa: E402
from attnbook.kernel_regression import kernel_weights, nadaraya_watson  # noqa: E402
from attnbook.kv_cache import KVCache, lm_forward_cached  # noqa: E402
from attnbook.multihead import MultiHeadAttention, copy_from_torch  # noqa: E402
from attnbook.positional import alibi_bias, apply_rope, inverse_frequencies  # noqa: E402
from attnbook.self_attention import OrderClassifier, OrderClassifierConfig, SelfAttention  # noqa: E402
from attnbook.similarity import cosine_similarity, nearest_neighbours, pairwise_cosine  # noqa: E402
from attnbook.train import train_steps  # noqa: E402
from attnbook.transformer import LMConfig, TransformerLM  # noqa: E402

INF = math.inf
V, BOS, EOS = 5, 0, 4


def _fn(make):
    """A next-token function whose every row is make(arange(V)) (it ignores the prefix)."""
    return lambda prefixes, rows: make(torch.arange(V, dtype=torch.float32)).expand(
        len(prefixes), V)


LOG_PROBS = _fn(lambda x: x.log_softmax(-1))


# ---------------------------------------------------------------- the rule for "empty"

def test_check_nonempty_passes_something_and_names_what_is_missing():
    shapes.check_nonempty(torch.zeros(2, 1, 3), "keys", dim=-2)
    shapes.check_nonempty([1], "pairs")
    with pytest.raises(ValueError, match=r"keys has no positions \(S = 0\), shape \(2, 0, 3\)"
                                         r": attention needs"):
        shapes.check_nonempty(torch.zeros(2, 0, 3), "keys", dim=-2, what="positions (S = 0)",
                              why="attention needs a key")
    with pytest.raises(ValueError, match="pairs has no entries"):
        shapes.check_nonempty([], "pairs")
    with pytest.raises(ValueError, match="dim = 3 is not an axis"):
        shapes.check_nonempty(torch.zeros(2, 1, 3), "keys", dim=3)


@pytest.mark.parametrize("call, word", [
    (lambda: scaled_dot_product_attention(torch.randn(2, 3, 4), torch.randn(2, 0, 4),
                                          torch.randn(2, 0, 5)), "keys"),
    (lambda: MultiHeadAttention(8, 2)(torch.randn(2, 3, 8), torch.randn(2, 0, 8),
                                      torch.randn(2, 0, 8)), "keys"),
    (lambda: SelfAttention(4)(torch.randn(2, 0, 4)), "x"),
    (lambda: OrderClassifier(OrderClassifierConfig(5, 6))(torch.zeros(2, 0, dtype=torch.long)),
     "tokens"),
    (lambda: AttentionClassifier(5, 2)(torch.zeros(2, 0, dtype=torch.long)), "tokens"),
    (lambda: AttentionClassifier(5, 2, uniform=True)(torch.zeros(2, 0, dtype=torch.long)),
     "tokens"),  # was a ZeroDivisionError
    (lambda: cosine_similarity(torch.zeros(3, 0), torch.zeros(3, 0)), "a"),
    (lambda: pairwise_cosine(torch.zeros(2, 0), torch.zeros(3, 0)), "queries"),
    (lambda: make_corpus(n_train=0, n_val=2, n_test=2), "n_train"),
    (lambda: make_monolingual(n_train=0, n_val=2, n_test=2), "n_train"),
])
def test_a_result_computed_from_nothing_is_refused(call, word):
    with pytest.raises(ValueError, match=rf"\b{word}\b"):
        call()


def test_nothing_asked_for_is_still_an_empty_answer():
    """No queries: no outputs; zero pairs asked for: an empty list; empty held-out splits."""
    out, w = scaled_dot_product_attention(torch.randn(2, 0, 4), torch.randn(2, 3, 4),
                                          torch.randn(2, 3, 5))
    assert out.shape == (2, 0, 5) and w.shape == (2, 0, 3)
    assert generate_corpus(0) == []
    corpus = make_corpus(n_train=5, n_val=0, n_test=0)
    assert len(corpus.train) == 5 and corpus.val == corpus.test == []


# ---------------------------------------------------------------- log-probabilities

def test_check_log_probs_tells_logits_and_probabilities_apart():
    shapes.check_log_probs(torch.randn(3, 7).log_softmax(-1), "lp")
    shapes.check_log_probs(torch.tensor([[0.0, -INF]]), "lp")  # a sure outcome
    shapes.check_log_probs(-torch.rand(4), "lp", dim=None)
    shapes.check_log_probs(torch.randn(3, 7).log_softmax(-1).half(), "lp")  # 16-bit rounding
    with pytest.raises(ValueError, match=r"lp should hold log-probabilities.*logits\? apply "
                                         r"torch.log_softmax"):
        shapes.check_log_probs(torch.randn(3, 7), "lp")
    with pytest.raises(ValueError, match="lp should .*probabilities\\? pass their log"):
        shapes.check_log_probs(torch.randn(3, 7).softmax(-1), "lp")
    with pytest.raises(ValueError, match="lp should .*all -inf"):
        shapes.check_log_probs(torch.tensor([[-INF, -INF]]), "lp")
    with pytest.raises(ValueError, match="lp should .*nan"):
        shapes.check_log_probs(torch.tensor([[math.nan, 0.0]]), "lp")
    shapes.check_log_probs(torch.tensor([[math.nan, 0.0], [0.0, -INF]]), "lp", allow_nan=True)
    with pytest.raises(ValueError, match="lp should .*never positive"):
        shapes.check_log_probs(torch.tensor([-0.5, 0.2]), "lp", dim=None)


@pytest.mark.parametrize("search", [greedy, sample, beam_search])
@pytest.mark.parametrize("make, hint", [
    (lambda x: x, "logits"),
    (lambda x: x.softmax(-1), "probabilities"),
    (lambda x: torch.full_like(x, -INF), "all -inf"),
])
def test_searches_refuse_what_is_not_log_probabilities(search, make, hint):
    with pytest.raises(ValueError, match=f"the output of log_prob_fn .*{hint}"):
        search(_fn(make), 2, BOS, EOS, max_len=3)


@pytest.mark.parametrize("search", [greedy, sample, beam_search])
def test_searches_accept_log_probabilities(search):
    out = search(LOG_PROBS, 2, BOS, EOS, max_len=3)
    assert (out.log_probs <= 0).all()


def test_beam_step_and_reinforce_take_log_probabilities():
    scores, lengths = torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.long)
    finished = torch.tensor([[False, True]])
    logits = torch.randn(1, 2, V)
    logits[0, 1] = 3.0  # a finished beam's row is not read: anything goes
    good = logits.clone()
    good[0, 0] = good[0, 0].log_softmax(-1)
    beam_step(scores, lengths, finished, good, EOS)
    with pytest.raises(ValueError, match="log_probs .*logits"):
        beam_step(scores, lengths, finished, logits, EOS)
    with pytest.raises(ValueError, match="scores should hold log-probabilities"):
        beam_step(scores + 1, lengths, finished, good, EOS)
    probs = torch.tensor([0.3, 0.9], requires_grad=True)
    with pytest.raises(ValueError, match="log_probs .*probabilities\\? pass their log"):
        reinforce_loss(probs, torch.tensor([1.0, 0.0]))
    reinforce_loss(probs.log(), torch.tensor([1.0, 0.0]))


def test_sequence_log_probs_refuses_tokens_that_start_with_bos():
    tokens, lengths = torch.tensor([[2, 3, EOS]]), torch.tensor([3])
    assert sequence_log_probs(LOG_PROBS, tokens, lengths, BOS).item() < 0
    with pytest.raises(ValueError, match=r"tokens\[0\] starts with <bos>"):
        sequence_log_probs(LOG_PROBS, torch.tensor([[BOS, 2, 3]]), lengths, BOS)
    with pytest.raises(ValueError, match="log_prob_fn .*logits"):
        sequence_log_probs(_fn(lambda x: x), tokens, lengths, BOS)


# ---------------------------------------------------------------- distributions

def test_check_distribution_names_counts_and_scores():
    shapes.check_distribution(torch.tensor([[0.25, 0.75], [1.0, 0.0]]), "p")
    with pytest.raises(ValueError, match="p should be a distribution .*sums to 3 -- counts"):
        shapes.check_distribution(torch.tensor([1.0, 2.0]), "p")
    with pytest.raises(ValueError, match="p should be .*negative entries .*scores"):
        shapes.check_distribution(torch.tensor([1.5, -0.5]), "p")
    with pytest.raises(ValueError, match="p should be .*nan or inf"):
        shapes.check_distribution(torch.tensor([0.5, INF]), "p")
    with pytest.raises(ValueError, match="p should be .*sums to 0.5"):
        shapes.check_distribution(torch.tensor([0.0, 0.5]), "p")


@pytest.mark.parametrize("distance", [js_distance, tv_distance])
def test_distances_take_distributions_only(distance):
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])
    assert 0 < distance(p, q) <= 1
    with pytest.raises(ValueError, match=r"\bp\b.*counts"):
        distance(torch.tensor([1.0, 2.0]), q)  # tv_distance gave 3.0, outside [0, 1]
    with pytest.raises(ValueError, match=r"\bq\b.*negative"):
        distance(p, torch.tensor([2.0, -1.0]))


def test_imposed_attention_weights_are_a_distribution():
    model = AttentionClassifier(5, 2).eval()
    tokens = torch.tensor([[1, 2, 3, 4]])
    model(tokens, torch.full((1, 4), 0.25))
    for bad in (torch.ones(1, 4), torch.tensor([[0.5, 0.5, 0.5, -0.5]])):
        with pytest.raises(ValueError, match=r"\bweights\b"):
            model(tokens, bad)


# ---------------------------------------------------------------- devices

def _no_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_check_device_takes_devices_this_machine_has(monkeypatch):
    _no_gpus(monkeypatch)
    assert shapes.check_device(None) is None
    assert shapes.check_device("cpu") == torch.device("cpu")
    assert shapes.check_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(TypeError, match=r"device should be a device name .*'cuda:0'"):
        shapes.check_device(0)
    with pytest.raises(ValueError, match="device 'cuda' .*no CUDA GPU"):
        shapes.check_device("cuda")
    with pytest.raises(ValueError, match="device 'mps' .*not available"):
        shapes.check_device("mps")
    with pytest.raises(ValueError, match="device should be a device name"):
        shapes.check_device("gpu")


def test_get_device_refuses_an_int_and_an_absent_device(monkeypatch):
    _no_gpus(monkeypatch)
    monkeypatch.delenv("ATTNBOOK_DEVICE", raising=False)
    with pytest.raises(TypeError, match="prefer"):
        get_device(0)  # was: cpu, as if no preference had been given
    with pytest.raises(ValueError, match="prefer 'mps'"):
        get_device("mps")  # was: mps on Linux
    monkeypatch.setenv("ATTNBOOK_DEVICE", "mps")
    with pytest.raises(ValueError, match="ATTNBOOK_DEVICE 'mps'"):
        get_device()


@pytest.mark.parametrize("call", [
    lambda: greedy(LOG_PROBS, 2, BOS, EOS, device="cuda"),
    lambda: sample(LOG_PROBS, 2, BOS, EOS, device="cuda"),
    lambda: beam_search(LOG_PROBS, 2, BOS, EOS, device="cuda"),
    lambda: causal_mask_end(2, 3, device="cuda"),
    lambda: sliding_window_mask(3, 2, device="cuda"),
    lambda: causal_mask(3, device="cuda"),
])
def test_an_absent_device_is_refused_in_words(monkeypatch, call):
    _no_gpus(monkeypatch)
    with pytest.raises(ValueError, match="device 'cuda' was asked for"):  # was AssertionError
        call()


# ---------------------------------------------------------------- copies of PyTorch modules

def test_check_copy_options_names_the_option():
    shapes.check_copy_options(nn.Linear(2, 2), nn.Linear(2, 2), {"eps": (1e-5, 1e-5)})
    with pytest.raises(ValueError, match=r"differ in eps: theirs \(Linear\) has eps = 0.5, "
                                         r"ours \(Linear\) 1e-05"):
        shapes.check_copy_options(nn.Linear(2, 2), nn.Linear(2, 2), {"eps": (1e-5, 0.5)})


def test_copy_from_torch_refuses_options_it_does_not_copy():
    ours = MultiHeadAttention(8, 2)
    copy_from_torch(ours, nn.MultiheadAttention(8, 2, batch_first=True))
    with pytest.raises(ValueError, match="differ in dropout"):
        copy_from_torch(ours, nn.MultiheadAttention(8, 2, dropout=0.1, batch_first=True))
    with pytest.raises(ValueError, match="differ in batch_first"):
        copy_from_torch(ours, nn.MultiheadAttention(8, 2))
    copy_from_torch(MultiHeadAttention(8, 2, dropout=0.1),
                    nn.MultiheadAttention(8, 2, dropout=0.1, batch_first=True))


# ---------------------------------------------------------------- nan policies

def test_masked_out_values_never_reach_the_output():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 4, generator=g), torch.randn(2, 5, 4, generator=g),
               torch.randn(2, 5, 6, generator=g))
    want, _ = scaled_dot_product_attention(q, k, v, valid_lens=torch.tensor([3, 5]))
    v[0, 3:] = math.nan  # padding of sequence 0
    k[0, 3:] = math.nan
    got, w = scaled_dot_product_attention(q, k, v, valid_lens=torch.tensor([3, 5]))
    assert torch.equal(got, want) and not w.isnan().any()
    got, _ = scaled_dot_product_attention(q[:1], k[:1], v[:1],
                                          mask=torch.tensor([True] * 3 + [False] * 2))
    assert_close(got, want[:1])
    v[1, 0] = math.nan  # a key that is attended to: nan in, nan out
    got, _ = scaled_dot_product_attention(q, k, v, valid_lens=torch.tensor([3, 5]))
    assert got[1].isnan().all() and not got[0].isnan().any()


def test_masked_softmax_gives_zeros_for_a_row_masked_with_minus_inf():
    scores = torch.tensor([[-INF, -INF, -INF], [0.0, -INF, 1.0]], requires_grad=True)
    w = masked_softmax(scores)
    assert torch.equal(w[0], torch.zeros(3))
    assert_close(w[1], torch.softmax(scores[1], -1))
    (w * torch.randn(2, 3)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    both = masked_softmax(torch.full((1, 3), -INF), valid_lens=torch.tensor([3]))
    assert torch.equal(both, torch.zeros(1, 3))


@pytest.mark.parametrize("kernel", ["gaussian", "boxcar", "epanechnikov"])
@pytest.mark.parametrize("bandwidth", [1e-30, torch.tensor(1e-30)])
def test_nadaraya_watson_keeps_its_promise_of_no_nan(kernel, bandwidth):
    """h**2 underflows to 0: each query takes its nearest key (as a compact kernel's
    empty window does), a query on a key stays on it."""
    q, k = torch.tensor([0.0, 1.6, 3.4, 5.0]), torch.linspace(0, 5, 6)
    pred, w = nadaraya_watson(q, k, torch.arange(6.0), bandwidth, kernel)
    assert torch.equal(pred, torch.tensor([0.0, 2.0, 3.0, 5.0]))
    masked = kernel_weights(torch.tensor([[4.0, 1.0, 9.0]]), 1e-30, kernel,
                            mask=torch.tensor([[True, False, True]]))
    assert torch.equal(masked, torch.tensor([[1.0, 0.0, 0.0]]))


def test_nadaraya_watson_refuses_points_at_infinity():
    k, v = torch.linspace(0, 5, 6), torch.arange(6.0)
    with pytest.raises(ValueError, match="queries contains inf"):
        nadaraya_watson(torch.tensor([INF]), k, v)
    with pytest.raises(ValueError, match="keys contains nan"):
        nadaraya_watson(k, torch.tensor([0.0, math.nan]), v[:2])
    pred, _ = nadaraya_watson(torch.tensor([1e20]), k, v)  # finite in, finite out
    assert torch.isfinite(pred).all()


def test_online_softmax_refuses_nan_and_inf_like_softmax():
    for bad in (math.nan, INF):
        with pytest.raises(ValueError, match="x contains nan or \\+inf"):
            online_softmax(torch.tensor([0.0, bad]))


# ---------------------------------------------------------------- words, not internals

def test_lm_forward_cached_counts_the_cache_in_its_limit():
    torch.manual_seed(0)
    model = TransformerLM(LMConfig(10, d_model=8, num_heads=2, d_ff=16, max_len=10)).eval()
    cache = KVCache(2)
    lm_forward_cached(model, torch.randint(0, 10, (1, 3)), cache)
    with pytest.raises(ValueError, match=r"holds 3 positions and tokens adds 8: 11 in all, "
                                         r"but .* max_len = 10 \(only 7 more fit\)"):
        lm_forward_cached(model, torch.randint(0, 10, (1, 8)), cache)
    lm_forward_cached(model, torch.randint(0, 10, (1, 7)), cache)
    with pytest.raises(ValueError, match=r"max_len = 10 \(the cache is full\)"):
        lm_forward_cached(model, torch.randint(0, 10, (1, 1)), cache)


def test_self_attention_names_a_float_mask():
    with pytest.raises(TypeError, match="mask should hold booleans"):  # was bitwise_and_cpu
        SelfAttention(4, causal=True)(torch.randn(2, 3, 4), torch.ones(3, 3))


def test_multihead_attention_options_in_words():
    with pytest.raises(TypeError, match="dropout should be a number"):
        MultiHeadAttention(8, 2, dropout="0.1")
    mha = MultiHeadAttention(np.int64(8), np.int64(4), num_kv_heads=np.int64(2))
    assert (mha.num_heads, mha.num_kv_heads) == (4, 2) and type(mha.num_kv_heads) is int
    with pytest.raises(ValueError, match="num_kv_heads = 3"):
        MultiHeadAttention(8, 4, num_kv_heads=3)


def test_check_same_dtype_says_which_is_numpy():
    with pytest.raises(TypeError, match=r"keys should be a torch.Tensor, got a numpy.ndarray "
                                        r"of dtype float32; convert it with torch.as_tensor"):
        shapes.check_same_dtype((torch.zeros(2), "queries"),
                                (np.zeros(2, dtype=np.float32), "keys"))


# ---------------------------------------------------------------- the rest of the list

def test_apply_rope_refuses_positions_that_would_meet_the_heads():
    x = torch.randn(2, 2, 5, 8)  # B = h = 2: (B, T) positions would rotate head i by row i
    per_batch = torch.tensor([[0, 1, 2, 3, 4], [3, 4, 5, 6, 7]])
    with pytest.raises(ValueError, match=r"positions of shape \(2, 5\) .* ambiguous"):
        apply_rope(x, per_batch)
    out = apply_rope(x, per_batch[:, None, :])  # (B, 1, T): one set per sequence
    assert torch.equal(out[1], apply_rope(x[1], per_batch[1]))
    assert torch.equal(apply_rope(x, torch.arange(5)[None, None]), apply_rope(x))
    with pytest.raises(ValueError, match="do not broadcast"):
        apply_rope(x[0, 0], torch.zeros(3, 5))  # would have grown the output


def test_alibi_bias_refuses_more_queries_than_keys():
    assert alibi_bias(3, 5, 2).shape == (2, 3, 5)
    with pytest.raises(ValueError, match="T = 5 queries cannot be the last T of S = 3"):
        alibi_bias(5, 3, 2)


def test_nearest_neighbours_refuses_a_zero_query():
    table = torch.randn(12, 4)
    with pytest.raises(ValueError, match="query is the zero vector"):
        nearest_neighbours(torch.zeros(4), table)  # was: row 10, by accident


def test_true_function_refuses_negative_x():
    assert torch.isfinite(true_function(torch.linspace(0, 5, 11))).all()
    with pytest.raises(ValueError, match="x should be >= 0"):
        true_function(torch.tensor([1.0, -1.0]))


def test_make_batch_refuses_swapped_vocabularies():
    pairs = generate_corpus(3, seed=0)
    make_batch(pairs, source_vocab(), target_vocab())
    with pytest.raises(ValueError, match="src_vocab knows none of the source words"):
        make_batch(pairs, target_vocab(), source_vocab())


def test_train_steps_keeps_every_metric_aligned_with_the_steps():
    def step(i):
        return {"loss": float(i)} | ({"accuracy": i / 10} if i % 3 == 0 else {})

    history = train_steps(step, 7, log_every=2, progress=False)
    assert history["step"] == [0, 2, 4, 6]
    assert history["loss"] == [0.0, 2.0, 4.0, 6.0]
    acc = history["accuracy"]
    assert len(acc) == 4 and acc[0] == 0.0 and acc[3] == 0.6
    assert math.isnan(acc[1]) and math.isnan(acc[2])


@pytest.mark.parametrize("kwargs, word", [
    (dict(blocks=4, row=1, col=2), "col"), (dict(blocks=4, row=4, col=0), "row"),
    (dict(blocks=4, row=-1, col=0), "row"), (dict(blocks=0, row=0, col=0), "blocks"),
])
def test_draw_tiled_attention_refuses_tiles_it_cannot_draw(kwargs, word):
    with pytest.raises(ValueError, match=rf"\b{word}\b"):
        draw_tiled_attention(**kwargs)


# ---------------------------------------------------------------- the numerical bugs

def test_rope_in_float64_is_float64_accurate():
    d, p = 8, 33333
    x = torch.zeros(1, d, dtype=torch.float64)
    x[0, 0::2] = 1.0  # a unit vector in every pair
    out = apply_rope(x, torch.tensor([p]))
    want = []
    for i in range(d // 2):
        angle = p * 10000.0 ** (-2 * i / d)
        want += [math.cos(angle), math.sin(angle)]
    assert (out[0] - torch.tensor(want, dtype=torch.float64)).abs().max() < 1e-12  # was 5e-5
    assert inverse_frequencies(d).dtype == torch.float32  # the default is unchanged
    assert inverse_frequencies(d, dtype=torch.float64)[1] == 10000.0 ** (-2 / d)


def test_rope_in_float32_is_unchanged():
    """The angles of a float32 input: float64 frequencies rounded once to float32."""
    g = torch.Generator().manual_seed(0)
    x, pos = torch.randn(3, 7, 16, generator=g), torch.tensor([3, 9, 100, 0, 7, 2, 40])
    omega = (10000.0 ** (-torch.arange(0, 16, 2, dtype=torch.float64) / 16)).float()
    angles = pos.float()[:, None] * omega
    cos, sin = angles.cos(), angles.sin()
    even, odd = x[..., 0::2], x[..., 1::2]
    want = torch.stack([even * cos - odd * sin, even * sin + odd * cos], -1).flatten(-2)
    assert torch.equal(apply_rope(x, pos), want)


@pytest.mark.parametrize("row", [
    [-INF, 0.0, 1.0], [0.0, 1.0, -INF], [-INF, -INF, 2.0, -INF], [-INF, 3.0, -INF, 1.0],
])
def test_online_softmax_agrees_with_softmax_around_minus_inf(row):
    x = torch.tensor(row)
    assert_close(online_softmax(x), torch.softmax(x, -1), atol=1e-7, rtol=0)  # was all nan


def test_online_softmax_of_an_all_minus_inf_row_is_zeros():
    """The package's rule (masked_softmax, chapter 2's softmax): no key, no weight."""
    x = torch.tensor([[-INF, -INF], [0.0, 1.0]])
    assert torch.equal(online_softmax(x)[0], torch.zeros(2))
    assert_close(online_softmax(x)[1], torch.softmax(x[1], -1))


@pytest.mark.parametrize("row", [0, 1, 2, 3])
def test_tiled_attention_figure_names_its_query_block(row):
    fig = draw_tiled_attention(blocks=4, row=row, col=0)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert f"running state of block Q{row + 1}" in texts
    plt.close(fig)

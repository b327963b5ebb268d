"""The Transformer's layers equal PyTorch's; masks, shapes, the schedule and bad input."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from attnbook.attention import causal_mask
from attnbook.decoding import greedy, sequence_log_probs
from attnbook.transformer import (
    DecoderLayer,
    Embedding,
    Encoder,
    EncoderLayer,
    FeedForward,
    LMConfig,
    Transformer,
    TransformerConfig,
    TransformerLM,
    check_tokens,
    copy_decoder_layer_from_torch,
    copy_encoder_layer_from_torch,
    layer_norm,
    warmup_lr,
    warmup_schedule,
)

D, H, FF = 16, 4, 40


def _keep():
    return torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4]).bool()  # (B, S)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_equals_pytorch(norm_first):
    torch.manual_seed(0)
    theirs = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True,
                                        norm_first=norm_first).eval()
    ours = copy_encoder_layer_from_torch(EncoderLayer(D, H, FF, norm_first=norm_first),
                                         theirs).eval()
    x, keep = torch.randn(3, 7, D), _keep()
    with torch.no_grad():
        want = theirs(x, src_key_padding_mask=~keep)
        got, weights = ours(x, keep[:, None, None], need_weights=True)
        plain, _ = ours(x)
    assert_close(got[keep], want[keep], atol=1e-5, rtol=1e-5)
    assert_close(plain, theirs(x), atol=1e-5, rtol=1e-5)
    assert weights.shape == (3, H, 7, 7)
    assert (weights * ~keep[:, None, None]).sum() == 0  # padding gets no attention


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_pytorch(norm_first):
    torch.manual_seed(1)
    theirs = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True,
                                        norm_first=norm_first).eval()
    ours = copy_decoder_layer_from_torch(DecoderLayer(D, H, FF, norm_first=norm_first),
                                         theirs).eval()
    y, memory, keep = torch.randn(3, 5, D), torch.randn(3, 7, D), _keep()
    with torch.no_grad():
        want = theirs(y, memory, tgt_mask=nn.Transformer.generate_square_subsequent_mask(5),
                      memory_key_padding_mask=~keep)
        got, self_w, cross_w = ours(y, memory, causal_mask(5), keep[:, None, None],
                                    need_weights=True)
    assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert self_w.shape == (3, H, 5, 5) and cross_w.shape == (3, H, 5, 7)
    assert (self_w * ~causal_mask(5)).sum() == 0  # nothing from the future
    assert (cross_w * ~keep[:, None, None]).sum() == 0


def test_copy_refuses_mismatched_layers():
    theirs = nn.TransformerEncoderLayer(D, H, FF, batch_first=True, norm_first=True)
    with pytest.raises(ValueError, match="norm_first"):
        copy_encoder_layer_from_torch(EncoderLayer(D, H, FF, norm_first=False), theirs)
    gelu = nn.TransformerEncoderLayer(D, H, FF, batch_first=True, activation="gelu")
    with pytest.raises(ValueError, match="relu"):
        copy_encoder_layer_from_torch(EncoderLayer(D, H, FF), gelu)
    with pytest.raises(TypeError, match="nn.TransformerDecoderLayer"):
        copy_decoder_layer_from_torch(DecoderLayer(D, H, FF), theirs)


def test_feed_forward_is_position_wise():
    torch.manual_seed(2)
    ff = FeedForward(D, FF)
    x = torch.randn(2, 6, D)
    out = ff(x)
    assert out.shape == x.shape
    assert_close(out[:, 3], ff(x[:, 3:4])[:, 0])  # each position alone gives the same
    assert_close(ff(x.flip(1)), out.flip(1))


def test_layer_norm_written_out_equals_nn_layer_norm():
    torch.manual_seed(3)
    norm = nn.LayerNorm(D)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = 5 + 3 * torch.randn(4, 6, D)
    assert_close(layer_norm(x, norm.weight, norm.bias), norm(x))


def _model(norm_first=False, **kw):
    torch.manual_seed(4)
    cfg = TransformerConfig(src_vocab_size=11, tgt_vocab_size=9, d_model=D, num_heads=H,
                            d_ff=FF, norm_first=norm_first, max_len=12, **kw)
    return Transformer(cfg).eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_padding_changes_nothing_and_the_future_is_invisible(norm_first):
    model = _model(norm_first)
    src = torch.tensor([[4, 5, 6, 7, 0, 0], [4, 5, 6, 7, 8, 9]])
    src_len = torch.tensor([4, 6])
    tgt = torch.tensor([[1, 5, 6, 7], [1, 3, 4, 5]])
    logits, cross = model(src, src_len, tgt, need_weights=True)
    assert logits.shape == (2, 4, 9) and cross.shape == (2, 2, H, 4, 6)
    alone, _ = model(src[:1, :4], src_len[:1], tgt[:1])
    assert_close(logits[0], alone[0], atol=1e-5, rtol=1e-5)
    changed = tgt.clone()
    changed[:, 3] = 8  # the last target word cannot change earlier predictions
    assert_close(model(src, src_len, changed)[0][:, :3], logits[:, :3])
    assert_close(cross.sum(-1), torch.ones(2, 2, H, 4))


def test_log_prob_fn_matches_teacher_forcing():
    model = _model()
    src = torch.tensor([[4, 5, 6, 7, 0], [8, 9, 10, 4, 5]])
    fn = model.log_prob_fn(src)
    out = greedy(fn, 2, bos=1, eos=2, max_len=6)
    tgt_in = torch.cat([torch.ones(2, 1, dtype=torch.long), out.tokens[:, :-1]], 1)
    logits, _ = model(src, None, tgt_in)
    lp = torch.log_softmax(logits, -1).gather(2, out.tokens[..., None])[..., 0]
    mask = torch.arange(out.tokens.shape[1]) < out.lengths[:, None]
    assert_close((lp * mask).sum(1), out.log_probs, atol=1e-5, rtol=1e-5)
    # rows pick the source: swapping them swaps the answers
    swapped = fn(torch.ones(2, 1, dtype=torch.long), torch.tensor([1, 0]))
    assert_close(swapped, fn(torch.ones(2, 1, dtype=torch.long), torch.tensor([0, 1])).flip(0))


def test_language_model_is_causal_and_searchable():
    torch.manual_seed(5)
    lm = TransformerLM(LMConfig(vocab_size=10, d_model=D, num_heads=H, d_ff=FF,
                                max_len=8)).eval()
    x = torch.randint(1, 10, (3, 6))
    logits, weights = lm(x, need_weights=True)
    assert logits.shape == (3, 6, 10) and weights.shape == (3, 2, H, 6, 6)
    y = x.clone()
    y[:, 4:] = 3
    assert_close(lm(y)[0][:, :4], logits[:, :4])
    out = greedy(lm.log_prob_fn, 3, bos=1, eos=2, max_len=7)
    assert_close(sequence_log_probs(lm.log_prob_fn, out.tokens, out.lengths, 1), out.log_probs)


def test_bad_input_gets_a_clear_error():
    model = _model()
    src, tgt = torch.tensor([[4, 5, 6]]), torch.tensor([[1, 5]])
    with pytest.raises(ValueError, match="max_len = 12"):
        model(torch.full((1, 13), 4), None, tgt)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(torch.tensor([[4, 11]]), None, tgt)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(src, None, torch.tensor([[1, -1]]))
    with pytest.raises(TypeError, match="integer token ids"):
        model(src.float(), None, tgt)
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[4, 5, 6]], None, tgt)
    with pytest.raises(ValueError, match="tgt_in"):
        model(src, None, torch.tensor([[1, 5], [1, 6]]))  # two targets for one source
    lm = TransformerLM(LMConfig(vocab_size=10, d_model=D, num_heads=H, max_len=8))
    with pytest.raises(ValueError, match="max_len = 8"):
        lm(torch.ones(1, 9, dtype=torch.long))


def test_sizes_and_configs_are_checked_by_name():
    with pytest.raises(TypeError, match="d_model should be an int"):
        FeedForward("16", FF)
    with pytest.raises(ValueError, match="dropout should lie in"):
        FeedForward(D, FF, dropout=math.nan)
    with pytest.raises(ValueError, match="d_ff should be >= 1"):
        EncoderLayer(D, H, -1)
    with pytest.raises(ValueError, match="num_layers should be >= 1"):
        Encoder(-1, D, H, FF)
    with pytest.raises(ValueError, match="pad should be >= 0"):
        Embedding(12, D, 10, pad=-1)
    with pytest.raises(TypeError, match="pad should be an int"):
        Embedding(12, D, 10, pad=None)
    with pytest.raises(TypeError, match="cfg should be a TransformerConfig"):
        Transformer("small")
    with pytest.raises(TypeError, match="cfg should be an? LMConfig"):
        TransformerLM(None)
    with pytest.raises(ValueError, match="vocab_size should be >= 1"):
        check_tokens(torch.ones(1, 3, dtype=torch.long), vocab_size=-1, max_len=8)


def test_layer_inputs_are_named_not_multiheads_queries_and_keys():
    ff, enc, dec = FeedForward(D, FF), EncoderLayer(D, H, FF), DecoderLayer(D, H, FF)
    x, memory = torch.randn(2, 5, D), torch.randn(2, 7, D)
    with pytest.raises(TypeError, match=r"x should be a torch.Tensor.*torch.as_tensor\(x\)"):
        ff(x.numpy())
    with pytest.raises(TypeError, match="x have dtype torch.float64"):
        ff(x.double())
    with pytest.raises(ValueError, match="x have 17 features.*d_model=16"):
        enc(torch.randn(2, 5, D + 1))
    with pytest.raises(TypeError, match="memory should be a torch.Tensor"):
        dec(x, memory.numpy())
    with pytest.raises(ValueError, match=r"memory should have shape .*'B': 2"):
        dec(x, memory[:1])
    with pytest.raises(TypeError, match="memory_mask should hold booleans"):
        dec(x, memory, memory_mask=torch.ones(2, 1, 1, 7))
    with pytest.raises(ValueError, match=r"self_mask of shape \(5, 6\)"):
        dec(x, memory, self_mask=torch.ones(5, 6, dtype=torch.bool))


def test_transformer_names_src_len_memory_src_keep_and_prefixes():
    model = _model()
    src, tgt = torch.tensor([[4, 5, 6]]), torch.tensor([[1, 5]])
    with pytest.raises(TypeError, match=r"src_len should be a torch.Tensor"):
        model(src, np.array([3]), tgt)
    with pytest.raises(TypeError, match="src_len should hold integers"):
        model(src, torch.tensor([3.0]), tgt)
    with pytest.raises(ValueError, match=r"src_len should lie in 0 \.\. S = 3"):
        model.encode(src, torch.tensor([4]))
    memory, keep = model.encode(src)
    with pytest.raises(TypeError, match="memory have dtype torch.float64"):
        model.decode(tgt, memory.double(), keep)
    with pytest.raises(TypeError, match="src_keep should hold booleans"):
        model.decode(tgt, memory, keep.float())
    with pytest.raises(ValueError, match=r"src_keep of shape \(1, 1, 1, 4\)"):
        model.decode(tgt, memory, torch.ones(1, 1, 1, 4, dtype=torch.bool))
    # None: no source padding, the same as a mask that keeps every position
    assert_close(model.decode(tgt, memory, None)[0], model.decode(tgt, memory, keep)[0])
    fn = model.log_prob_fn(src)
    with pytest.raises(ValueError, match="prefixes have no tokens"):
        fn(torch.ones(1, 0, dtype=torch.long), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"rows should pick one of the B = 1"):
        fn(torch.ones(1, 1, dtype=torch.long), torch.tensor([1]))
    lm = TransformerLM(LMConfig(vocab_size=10, d_model=D, num_heads=H, max_len=8))
    with pytest.raises(ValueError, match="prefixes holds ids outside the vocabulary"):
        lm.log_prob_fn(torch.tensor([[1, 10]]))
    with pytest.raises(ValueError, match="prefixes have no tokens"):
        lm.log_prob_fn(torch.ones(2, 0, dtype=torch.long))


def test_layer_norm_and_schedule_check_their_arguments():
    x = torch.randn(3, D)
    with pytest.raises(TypeError, match="weight should be a torch.Tensor"):
        layer_norm(x, np.ones(D, dtype=np.float32), torch.zeros(D))
    with pytest.raises(ValueError, match=r"bias should have shape \(d\) with \{'d': 16\}"):
        layer_norm(x, torch.ones(D), torch.zeros(D + 1))
    with pytest.raises(TypeError, match="x has dtype torch.float32 but weight has dtype "
                                        "torch.float64"):
        layer_norm(x, torch.ones(D, dtype=torch.float64), torch.zeros(D))
    with pytest.raises(ValueError, match="x should have shape"):
        layer_norm(torch.randn(3, 0), torch.ones(0), torch.zeros(0))
    with pytest.raises(ValueError, match="factor should be a finite number > 0"):
        warmup_lr(1, 8, 4, factor=-1.0)
    with pytest.raises(TypeError, match="factor should be a number"):
        warmup_lr(1, 8, 4, factor="2")
    with pytest.raises(TypeError, match="optimizer should be a torch.optim.Optimizer"):
        warmup_schedule("adam", 8, 4)


def test_warmup_schedule():
    d, warmup = 512, 4000
    lrs = [warmup_lr(s, d, warmup) for s in range(1, 20001)]
    peak = max(range(len(lrs)), key=lrs.__getitem__) + 1
    assert peak == warmup  # linear rise, then 1/sqrt(step)
    assert lrs[warmup - 1] == pytest.approx(1 / math.sqrt(d * warmup))
    assert lrs[99] == pytest.approx(100 * lrs[0])
    assert lrs[4 * warmup - 1] == pytest.approx(lrs[warmup - 1] / 2)
    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_schedule(opt, d, warmup, factor=2.0)
    seen = []
    for _ in range(3):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([2 * warmup_lr(s, d, warmup) for s in (1, 2, 3)])
    with pytest.raises(ValueError, match="lr=1.0"):
        warmup_schedule(torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1e-3), d, 10)
    with pytest.raises(ValueError, match="step"):
        warmup_lr(0, d, warmup)

"""Encoder–decoders of chapter 6: shapes, masks, step == forward, greedy decoding."""

import pytest
import torch
from torch.testing import assert_close

from attnbook.seq2seq import Seq2Seq, Seq2SeqConfig, greedy_decode

KINDS = ["none", "bahdanau", "luong"]
V_SRC, V_TGT = 11, 13


def _model(kind, seed=0):
    torch.manual_seed(seed)
    return Seq2Seq(Seq2SeqConfig(V_SRC, V_TGT, embed_dim=8, hidden_dim=16, attention=kind)).eval()


def _batch(seed=0, B=4, S=7, T=6):
    g = torch.Generator().manual_seed(seed)
    src_len = torch.tensor([S, 3, 5, 1])[:B]
    src = torch.randint(4, V_SRC, (B, S), generator=g)
    src[torch.arange(S) >= src_len[:, None]] = 0  # padding
    tgt_in = torch.randint(4, V_TGT, (B, T), generator=g)
    tgt_in[:, 0] = 1
    return src, src_len, tgt_in


@pytest.mark.parametrize("kind", KINDS)
def test_shapes(kind):
    src, src_len, tgt_in = _batch()
    logits, weights = _model(kind)(src, src_len, tgt_in)
    assert logits.shape == (4, 6, V_TGT)
    if kind == "none":
        assert weights is None
    else:
        assert weights.shape == (4, 6, 7)
        assert_close(weights.sum(-1), torch.ones(4, 6))


@pytest.mark.parametrize("kind", ["bahdanau", "luong"])
def test_padding_never_receives_attention(kind):
    src, src_len, tgt_in = _batch()
    _, weights = _model(kind)(src, src_len, tgt_in)
    pad = torch.arange(7) >= src_len[:, None]  # (B, S)
    assert (weights.masked_select(pad[:, None].expand_as(weights)) == 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_padding_does_not_change_the_output(kind):
    """A sentence alone and the same sentence padded in a batch give the same logits."""
    src, src_len, tgt_in = _batch()
    model = _model(kind)
    logits, _ = model(src, src_len, tgt_in)
    n = int(src_len[1])
    alone, _ = model(src[1:2, :n], src_len[1:2], tgt_in[1:2])
    assert_close(logits[1:2], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_step_by_step_equals_teacher_forcing(kind):
    src, src_len, tgt_in = _batch()
    model = _model(kind)
    logits, weights = model(src, src_len, tgt_in)
    memory = model.encoder(src, src_len)
    state = model.decoder.init_state(memory)
    for t in range(tgt_in.shape[1]):
        step_logits, state, w = model.decoder.step(tgt_in[:, t], state, memory)
        assert_close(step_logits, logits[:, t], atol=1e-5, rtol=1e-5)
        if w is not None:
            assert_close(w, weights[:, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_decode_stops_at_eos(kind):
    src, src_len, _ = _batch()
    model = _model(kind)
    eos = 2
    with torch.no_grad():  # <eos> never chosen: decoding runs to max_len
        model.decoder.out.bias[eos] = -100.0
    tokens, lengths, weights = greedy_decode(model, src, src_len, bos=1, eos=eos, max_len=20)
    assert tokens.shape[1] == 20 and (lengths == 20).all()  # never says <eos>: runs to max_len
    with torch.no_grad():
        model.decoder.out.bias[eos] = 100.0
    tokens, lengths, weights = greedy_decode(model, src, src_len, bos=1, eos=eos, max_len=20)
    assert tokens.shape == (4, 1) and (tokens == eos).all() and (lengths == 1).all()
    if kind != "none":
        assert weights.shape == (4, 1, 7)


def test_greedy_decode_pads_finished_sentences_with_eos():
    src, src_len, _ = _batch()
    model = _model("bahdanau")
    tokens, lengths, weights = greedy_decode(model, src, src_len, bos=1, eos=2, max_len=15)
    for i, n in enumerate(lengths.tolist()):
        assert (tokens[i, n:] == 2).all() and (weights[i, n:] == 0).all()
        if n < 15:
            assert tokens[i, n - 1] == 2 and (tokens[i, : n - 1] != 2).all()


def test_bad_inputs_are_rejected():
    src, src_len, tgt_in = _batch()
    with pytest.raises(ValueError, match="attention should be one of"):
        Seq2Seq(Seq2SeqConfig(V_SRC, V_TGT, attention="dot"))
    with pytest.raises(ValueError, match="tgt_in"):
        _model("luong")(src, src_len, tgt_in[:2])


@pytest.mark.parametrize("word", [True, False])
def test_annotations_hold_the_gru_states_and_optionally_the_word(word):
    src, src_len, _ = _batch()
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(V_SRC, V_TGT, embed_dim=8, hidden_dim=16, word_in_annotations=word)
    model = Seq2Seq(cfg).eval()
    memory = model.encoder(src, src_len)
    assert cfg.annotation_dim == (2 * 16 + 8 if word else 2 * 16)
    assert memory.outputs.shape == (4, 7, cfg.annotation_dim)
    if word:  # the last E numbers of a_j are x_j, the embedding of source word j
        assert_close(memory.outputs[..., 32:], model.encoder.embed(src))
    pad = torch.arange(7) >= src_len[:, None]  # (B, S)
    assert (memory.outputs[pad] == 0).all()  # padding positions carry nothing
    _, weights = model(src, src_len, torch.ones(4, 3, dtype=torch.long))
    assert weights.shape == (4, 3, 7)


def test_luong_scores_are_divided_by_sqrt_h_unless_asked_not_to():
    src, src_len, tgt_in = _batch()
    weights = {}
    for scaled in (True, False):
        torch.manual_seed(0)  # the scale is not a parameter: both models get the same weights
        cfg = Seq2SeqConfig(V_SRC, V_TGT, embed_dim=8, hidden_dim=16, attention="luong",
                            luong_scaled=scaled)
        _, weights[scaled] = Seq2Seq(cfg).eval()(src, src_len, tgt_in)
    # log of the unscaled weights = scores + a constant per row; / sqrt(16), softmax again
    valid = (torch.arange(7) < src_len[:, None])[:, None].expand_as(weights[False])
    logits = torch.log(weights[False]).masked_fill(~valid, float("-inf")) / 4
    assert_close(weights[True], torch.softmax(logits, -1))
    assert not torch.allclose(weights[True], weights[False])

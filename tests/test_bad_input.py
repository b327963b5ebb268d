"""Bad input to any public function or class of attnbook is refused in words (issue 20).

One discovering test, the way tests/test_exercises.py covers every checker:

1. every public function and class of every attnbook module is found with pkgutil
   (attnbook.exercises has its own tests); an nn.Module is tested as its constructor
   and its ``forward``, another class as its constructor and its public methods;
2. each gets a valid baseline call: from ``BASELINES`` below, or built from its
   signature and type hints (sizes 4, tensors (2, 3, 4), configs built the same way),
   so a new module is covered without a line here;
3. each argument of the baseline in turn is replaced with bad values of its kind
   (``mutations``): a NumPy array, a list, None, a string, a number for a tensor;
   one more or one fewer dimension; the wrong dtype; a float64 mixed with float32;
   an empty dimension; a nan; -1, 0, 2.5 or "3" for a size; nan, -1 or inf for a
   number; a string or an empty list for a list of sentences;
4. each call runs under a time limit and its outcome is sorted (``classify``):
   ``clear``    TypeError/ValueError raised by attnbook naming the argument,
   ``unclear``  TypeError/ValueError raised by attnbook that does not name it,
   ``raw``      any error raised inside PyTorch/NumPy, or another error type,
   ``hang``     no answer within the time limit,
   ``silent``   returned although the input is wrong (a wrong type, a negative or
                fractional size, a nan that vanished from the result),
   ``accepted`` returned where a result is legitimate (an empty input gives an empty
                result, a batch dimension broadcasts, float64 throughout, nan in -> nan
                out, a documented NumPy input).

The test fails on any hang, silent, raw or unclear outcome, unless the function is in
``KNOWN_GAPS`` with a precise reason (then the test is an expected failure that says
so). Random shapes, dtypes and values, four for every tensor argument (seeded: the same
cases on every run), come on top of the fixed mutations.

``python tests/test_bad_input.py`` prints the outcome table, per module and overall.
"""

import collections
import dataclasses
import functools
import importlib
import inspect
import math
import pkgutil
import random
import re
import signal
import sys
import typing
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import attnbook  # noqa: E402

SRC = str(Path(attnbook.__file__).parent)
TIME_LIMIT = 20  # seconds per call; every valid baseline here takes well under one

# Modules whose public functions take no learner input: they are tested elsewhere.
OUT_OF_SCOPE = {
    "attnbook.exercises": "the checkers; tests/test_exercises*.py feed them wrong answers",
    "attnbook.diagrams": "draws the book's schematic figures from layout numbers; no "
                         "tensors or data (tests/test_diagrams.py)",
    "attnbook.grade": "the teachers' command line; takes notebook paths "
                      "(tests/test_grade.py runs it on broken notebooks)",
    "attnbook.interactive": "figures a chapter builds from its own tensors, and the book's "
                            "Sphinx glue (tests/test_interactive.py feeds them bad input)",
}


# ---------------------------------------------------------------- valid baselines

def _seq2seq(kind="bahdanau"):
    from attnbook.seq2seq import Seq2Seq, Seq2SeqConfig
    torch.manual_seed(0)
    return Seq2Seq(Seq2SeqConfig(12, 10, embed_dim=4, hidden_dim=6, attention=kind)).eval()


def _src():
    return torch.tensor([[4, 5, 6, 7], [8, 9, 0, 0]]), torch.tensor([4, 2])


def _memory(kind):
    model = _seq2seq(kind)
    with torch.no_grad():
        return model, model.encoder(*_src())


def _pairs():
    from attnbook.data.translation import generate_corpus
    return generate_corpus(4, seed=0)


def _vocabs():
    from attnbook.data.translation import source_vocab, target_vocab
    return source_vocab(), target_vocab()


def _call(fn, **kwargs):
    return fn, kwargs


def _decoder_baselines(cls_name, kind):
    def forward():
        model, memory = _memory(kind)
        return _call(model.decoder, tgt_in=torch.tensor([[1, 4, 5], [1, 6, 7]]), memory=memory)

    def step():
        model, memory = _memory(kind)
        state = model.decoder.init_state(memory)
        return _call(model.decoder.step, y_prev=torch.tensor([1, 4]), state=state,
                     memory=memory)

    def init_state():
        model, memory = _memory(kind)
        return _call(model.decoder.init_state, memory=memory)

    def build():
        from attnbook.seq2seq import Seq2SeqConfig
        return _call(getattr(importlib.import_module("attnbook.seq2seq"), cls_name),
                     cfg=Seq2SeqConfig(12, 10, embed_dim=4, hidden_dim=6, attention=kind))

    p = f"attnbook.seq2seq.{cls_name}"
    return {p: build, f"{p}.forward": forward, f"{p}.step": step,
            f"{p}.init_state": init_state}


def _q(T=3, d=4):
    return torch.randn(2, T, d, generator=torch.Generator().manual_seed(T * 10 + d))


def _weights():
    return torch.softmax(torch.randn(3, 4, generator=torch.Generator().manual_seed(1)), -1)


def _logits():
    return torch.randn(2, 5, generator=torch.Generator().manual_seed(2), requires_grad=True)


def _module(path, *args):
    module, name = path.rsplit(".", 1)
    torch.manual_seed(0)
    return getattr(importlib.import_module(module), name)(*args)


def _tokens_sentence():
    return "the old dog saw a red cat".split()


A = "attnbook."
BASELINES = {
    # shapes: the checks themselves
    A + "shapes.check_shape": lambda: _call(attnbook.shapes.check_shape, x=_q(),
                                            expected=("B", "T", "d"), name="queries"),
    A + "shapes.check_float": lambda: _call(attnbook.shapes.check_float, x=_q(), name="x"),
    A + "shapes.check_tensor": lambda: _call(attnbook.shapes.check_tensor, x=_q(), name="x"),
    A + "shapes.check_not_nan": lambda: _call(attnbook.shapes.check_not_nan, x=_q(), name="x"),
    A + "shapes.check_positive_int": lambda: _call(attnbook.shapes.check_positive_int, n=3,
                                                   name="n"),
    A + "shapes.check_number": lambda: _call(attnbook.shapes.check_number, x=0.5, name="x",
                                             above=0.0),
    A + "shapes.check_ids": lambda: _call(attnbook.shapes.check_ids, ids=_src()[0],
                                          name="ids", vocab_size=12),
    A + "shapes.check_nonempty": lambda: _call(attnbook.shapes.check_nonempty, x=_q(),
                                               name="keys", dim=-2),
    A + "shapes.check_log_probs": lambda: _call(attnbook.shapes.check_log_probs,
                                                x=torch.log_softmax(_q(), -1), name="x"),
    A + "shapes.check_distribution": lambda: _call(attnbook.shapes.check_distribution,
                                                   p=_weights(), name="p"),
    A + "shapes.check_device": lambda: _call(attnbook.shapes.check_device, device="cpu",
                                             name="device"),
    A + "shapes.check_copy_options": None,  # takes two modules: covered by its callers
    A + "shapes.check_same_dtype": None,  # takes (tensor, name) pairs: covered by its callers
    A + "shapes.check_module_input": None,  # takes a module and a size: covered by callers
    # env, plotting, train
    A + "env.set_seed": lambda: _call(attnbook.env.set_seed, seed=0),
    A + "env.get_device": lambda: _call(attnbook.env.get_device, prefer="cpu"),
    A + "plotting.show_heatmaps": lambda: _call(attnbook.plotting.show_heatmaps,
                                                weights=_weights(), ncols=1),
    A + "plotting.state_scale": lambda: _call(attnbook.plotting.state_scale,
                                              image=plt.imshow(np.eye(2)),
                                              where="values written in the caption"),
    A + "train.train_steps": lambda: _call(attnbook.train.train_steps,
                                           step=lambda i: {"loss": 1.0 / (i + 1)},
                                           num_steps=3, progress=False),
    A + "train.plot_history": lambda: _call(attnbook.train.plot_history,
                                            histories={"a": {"step": [0, 1], "loss": [2.0, 1.0]}},
                                            metric="loss"),
    # chapter 1
    A + "similarity.cosine_similarity": lambda: _call(attnbook.similarity.cosine_similarity,
                                                      a=_q()[0], b=_q()[1]),
    A + "similarity.score_matrix": lambda: _call(attnbook.similarity.score_matrix,
                                                 queries=_q(), keys=_q(5)),
    A + "similarity.pairwise_cosine": lambda: _call(attnbook.similarity.pairwise_cosine,
                                                    queries=_q(), keys=_q(5)),
    A + "similarity.nearest_neighbours": lambda: _call(attnbook.similarity.nearest_neighbours,
                                                       query=_q()[0, 0], table=_q(6)[0], k=2,
                                                       exclude=1),
    A + "data.embeddings.toy_word_embeddings": lambda: _call(
        attnbook.data.embeddings.toy_word_embeddings, extra_dims=2, noise=0.1, seed=0),
    # chapter 2
    **{A + f"softmax.{f}": (lambda f=f: _call(getattr(attnbook.softmax, f), x=_q(), axis=-1))
       for f in ("softmax", "log_softmax", "logsumexp")},
    A + "softmax.entropy": lambda: _call(attnbook.softmax.entropy, p=_weights(), axis=-1,
                                         base=2.0),
    # chapter 3
    A + "kernel_regression.kernel_values": lambda: _call(
        attnbook.kernel_regression.kernel_values, u2=_weights() * 3, kernel="epanechnikov"),
    A + "kernel_regression.squared_distances": lambda: _call(
        attnbook.kernel_regression.squared_distances, queries=_q(), keys=_q(5)),
    A + "kernel_regression.kernel_weights": lambda: _call(
        attnbook.kernel_regression.kernel_weights, d2=_weights() * 3, bandwidth=0.5,
        kernel="boxcar", mask=torch.ones(3, 4, dtype=torch.bool)),
    A + "kernel_regression.nadaraya_watson": lambda: _call(
        attnbook.kernel_regression.nadaraya_watson, queries=torch.linspace(0, 5, 6),
        keys=torch.linspace(0, 5, 8), values=torch.linspace(1, 2, 8), bandwidth=0.7,
        kernel="boxcar"),
    **{A + f"kernel_regression.{f}": (lambda f=f: _call(
        getattr(attnbook.kernel_regression, f), x=torch.linspace(0, 5, 8),
        y=torch.linspace(1, 2, 8) ** 2, bandwidth=0.7, kernel="epanechnikov"))
       for f in ("loo_predictions", "loo_error")},
    A + "kernel_regression.select_bandwidth_loo": lambda: _call(
        attnbook.kernel_regression.select_bandwidth_loo, x=torch.linspace(0, 5, 8),
        y=torch.linspace(1, 2, 8) ** 2, bandwidths=[0.3, 1.0]),
    A + "data.regression.true_function": lambda: _call(attnbook.data.regression.true_function,
                                                       x=torch.linspace(0, 5, 4)),
    A + "data.regression.make_regression_data": lambda: _call(
        attnbook.data.regression.make_regression_data, n_train=10, n_test=5, noise=0.5,
        low=0.0, high=5.0, seed=0),
    # chapter 4
    A + "attention.causal_mask": lambda: _call(attnbook.attention.causal_mask, T=3, S=4),
    A + "attention.padding_mask": lambda: _call(attnbook.attention.padding_mask,
                                                valid_lens=torch.tensor([1, 4]), S=4),
    A + "attention.masked_softmax": lambda: _call(
        attnbook.attention.masked_softmax, scores=_q(3, 5), valid_lens=torch.tensor([2, 5]),
        mask=torch.ones(3, 5, dtype=torch.bool).tril()),
    A + "attention.scaled_dot_product_attention": lambda: _call(
        attnbook.attention.scaled_dot_product_attention, queries=_q(), keys=_q(5),
        values=_q(5, 6), mask=torch.ones(3, 5, dtype=torch.bool).tril()),
    **{A + f"attention.{f}": (lambda f=f: _call(getattr(attnbook.attention, f), queries=_q(),
                                                keys=_q(5)))
       for f in ("dot_scores", "scaled_dot_scores", "cosine_scores")},
    A + "attention.GeneralScore": lambda: _call(attnbook.attention.GeneralScore,
                                                query_size=4, key_size=6),
    A + "attention.GeneralScore.forward": lambda: _call(
        _module(A + "attention.GeneralScore", 4, 6), queries=_q(), keys=_q(5, 6)),
    A + "attention.AdditiveScore": lambda: _call(attnbook.attention.AdditiveScore,
                                                 query_size=4, key_size=6, hidden_size=5),
    A + "attention.AdditiveScore.forward": lambda: _call(
        _module(A + "attention.AdditiveScore", 4, 6, 5), queries=_q(), keys=_q(5, 6)),
    A + "attention.LocationScore": lambda: _call(attnbook.attention.LocationScore,
                                                 query_size=4, max_len=8),
    A + "attention.LocationScore.forward": lambda: _call(
        _module(A + "attention.LocationScore", 4, 8), queries=_q(), keys=_q(5, 6)),
    # chapter 5
    A + "hard_attention.hard_attention": lambda: _call(
        attnbook.hard_attention.hard_attention, scores=_logits(), values=_q(5, 3),
        generator=torch.Generator().manual_seed(0)),
    A + "hard_attention.reinforce_loss": lambda: _call(
        attnbook.hard_attention.reinforce_loss,
        log_probs=torch.log_softmax(_logits(), -1)[:, 0],
        rewards=torch.tensor([1.0, 0.0]), baseline=torch.tensor([0.5, 0.5])),
    A + "hard_attention.MovingAverageBaseline": lambda: _call(
        attnbook.hard_attention.MovingAverageBaseline, momentum=0.9),
    A + "hard_attention.MovingAverageBaseline.update": lambda: _call(
        attnbook.hard_attention.MovingAverageBaseline().update, rewards=torch.tensor([1.0, 0.0])),
    A + "hard_attention.gumbel_softmax": lambda: _call(
        attnbook.hard_attention.gumbel_softmax, logits=_logits(), tau=0.5,
        generator=torch.Generator().manual_seed(0)),
    A + "hard_attention.window_positions": lambda: _call(
        attnbook.hard_attention.window_positions, centre=torch.tensor([2.4, 7.0]), D=2, S=10),
    A + "hard_attention.gaussian_window": lambda: _call(
        attnbook.hard_attention.gaussian_window, positions=torch.arange(5).expand(2, 5),
        centre=torch.tensor([2.4, 3.0]), D=2),
    A + "hard_attention.local_p_weights": lambda: _call(
        attnbook.hard_attention.local_p_weights, scores=torch.randn(2, 10),
        centre=torch.tensor([2.4, 7.0]), D=2),
    A + "data.marker_task.make_marker_batch": lambda: _call(
        attnbook.data.marker_task.make_marker_batch, n=4, length=8, num_tokens=5, block=2,
        seed=0),
    A + "data.marker_task.marker_id": lambda: _call(attnbook.data.marker_task.marker_id,
                                                    num_tokens=5),
    # chapter 6
    A + "seq2seq.Seq2SeqConfig": lambda: _call(attnbook.seq2seq.Seq2SeqConfig,
                                               src_vocab_size=12, tgt_vocab_size=10,
                                               embed_dim=4, hidden_dim=6, pad=0),
    A + "seq2seq.Seq2Seq": lambda: _call(attnbook.seq2seq.Seq2Seq,
                                         cfg=_seq2seq().cfg),
    A + "seq2seq.Seq2Seq.forward": lambda: _call(_seq2seq(), src=_src()[0], src_len=_src()[1],
                                                 tgt_in=torch.tensor([[1, 4, 5], [1, 6, 7]])),
    A + "seq2seq.Encoder": lambda: _call(attnbook.seq2seq.Encoder, cfg=_seq2seq().cfg),
    A + "seq2seq.Encoder.forward": lambda: _call(_seq2seq().encoder, src=_src()[0],
                                                 src_len=_src()[1]),
    A + "seq2seq.AdditiveAttention": lambda: _call(attnbook.seq2seq.AdditiveAttention,
                                                   query_dim=4, key_dim=6, attn_dim=5),
    A + "seq2seq.AdditiveAttention.forward": lambda: _call(
        _module(A + "seq2seq.AdditiveAttention", 4, 6, 5), query=_q()[:, 0],
        keys_proj=_q(5, 5), values=_q(5, 6), src_len=torch.tensor([5, 3])),
    **_decoder_baselines("PlainDecoder", "none"),
    **_decoder_baselines("BahdanauDecoder", "bahdanau"),
    **_decoder_baselines("LuongDecoder", "luong"),
    A + "seq2seq.greedy_decode": lambda: _call(attnbook.seq2seq.greedy_decode,
                                               model=_seq2seq("luong"), src=_src()[0],
                                               src_len=_src()[1], bos=1, eos=2, max_len=5),
    A + "metrics.ngrams": lambda: _call(attnbook.metrics.ngrams, tokens=_tokens_sentence(), n=2),
    A + "metrics.modified_precision_counts": lambda: _call(
        attnbook.metrics.modified_precision_counts, hypothesis=_tokens_sentence()[:5],
        reference=_tokens_sentence(), n=1),
    A + "metrics.brevity_penalty": lambda: _call(attnbook.metrics.brevity_penalty,
                                                 hyp_len=5, ref_len=7),
    A + "metrics.corpus_bleu": lambda: _call(attnbook.metrics.corpus_bleu,
                                             hypotheses=[_tokens_sentence()[:6]],
                                             references=[_tokens_sentence()], max_n=2),
    A + "metrics.token_accuracy": lambda: _call(attnbook.metrics.token_accuracy,
                                                hypothesis=_tokens_sentence()[:5],
                                                reference=_tokens_sentence()),
    A + "metrics.alignment_error_rate": lambda: _call(attnbook.metrics.alignment_error_rate,
                                                      predicted={(0, 1), (1, 1)},
                                                      sure={(0, 1)}, possible={(1, 1)}),
    A + "metrics.attention_links": lambda: _call(attnbook.metrics.attention_links,
                                                 weights=_weights(), length=2),
    A + "metrics.gold_links": lambda: _call(attnbook.metrics.gold_links, alignment=[2, 0, 1]),
    A + "data.translation.sample_pair": lambda: _call(attnbook.data.translation.sample_pair,
                                                      rng=random.Random(0), length=7),
    A + "data.translation.generate_corpus": lambda: _call(
        attnbook.data.translation.generate_corpus, n=3, min_len=5, max_len=9, seed=0),
    A + "data.translation.make_corpus": lambda: _call(
        attnbook.data.translation.make_corpus, n_train=5, n_val=2, n_test=2, min_len=5,
        max_len=9, seed=0),
    A + "data.translation.Vocab": lambda: _call(attnbook.data.translation.Vocab,
                                                tokens=_tokens_sentence()),
    A + "data.translation.Vocab.encode": lambda: _call(_vocabs()[0].encode,
                                                       tokens=_tokens_sentence()),
    A + "data.translation.Vocab.decode": lambda: _call(_vocabs()[0].decode, ids=[4, 5, 2, 0]),
    A + "data.translation.make_batch": lambda: _call(attnbook.data.translation.make_batch,
                                                     pairs=_pairs(), src_vocab=_vocabs()[0],
                                                     tgt_vocab=_vocabs()[1]),
    A + "data.translation.bucketed_batches": lambda: _call(
        lambda **kw: next(attnbook.data.translation.bucketed_batches(**kw)),
        pairs=_pairs(), batch_size=2, src_vocab=_vocabs()[0], tgt_vocab=_vocabs()[1]),
}


# ---- the Part IV modules (chapters 7-9), written while this test was: their baselines


def _bigram():
    from attnbook.decoding import BigramLM
    return BigramLM([list(p.tgt) for p in _pairs()], _vocabs()[1])


def _ids(B=2, T=5, V=10):
    return torch.randint(3, V, (B, T), generator=torch.Generator().manual_seed(B * T))


def _x(d=8):
    return _q(5, d)


def _tf():
    from attnbook.transformer import Transformer, TransformerConfig
    torch.manual_seed(0)
    return Transformer(TransformerConfig(12, 10, d_model=8, num_heads=2, d_ff=16,
                                         num_encoder_layers=1, num_decoder_layers=1,
                                         max_len=10)).eval()


def _lm():
    from attnbook.transformer import LMConfig, TransformerLM
    torch.manual_seed(0)
    return TransformerLM(LMConfig(10, d_model=8, num_heads=2, d_ff=16, num_layers=1,
                                  max_len=10)).eval()


def _layer(kind):
    return _module(A + f"transformer.{kind}Layer", 8, 2, 16)


def _torch_layer(kind):
    cls = getattr(torch.nn, f"Transformer{kind}Layer")
    return cls(8, 2, 16, dropout=0.0, batch_first=True)


def _part_iv():
    return {
        A + "decoding.BigramLM": lambda: _call(attnbook.decoding.BigramLM,
                                               sentences=[list(p.tgt) for p in _pairs()],
                                               vocab=_vocabs()[1], smoothing=0.1),
        A + "decoding.BigramLM.log_prob_fn": lambda: _call(
            _bigram().log_prob_fn, prefixes=torch.tensor([[1, 4], [1, 5]]),
            rows=torch.tensor([0, 1])),
        A + "decoding.BigramLM.perplexity": lambda: _call(
            _bigram().perplexity, sentences=[list(p.tgt) for p in _pairs()]),
        A + "decoding.greedy": lambda: _call(attnbook.decoding.greedy,
                                             log_prob_fn=_bigram().log_prob_fn, batch_size=2,
                                             bos=1, eos=2, max_len=6),
        A + "decoding.sample": lambda: _call(attnbook.decoding.sample,
                                             log_prob_fn=_bigram().log_prob_fn, batch_size=2,
                                             bos=1, eos=2, max_len=6, temperature=0.8, top_k=3,
                                             generator=torch.Generator().manual_seed(0)),
        A + "decoding.beam_search": lambda: _call(attnbook.decoding.beam_search,
                                                  log_prob_fn=_bigram().log_prob_fn,
                                                  batch_size=2, bos=1, eos=2, beam_width=3,
                                                  max_len=6),
        A + "decoding.sequence_log_probs": lambda: _call(
            attnbook.decoding.sequence_log_probs, log_prob_fn=_bigram().log_prob_fn,
            tokens=torch.tensor([[4, 5, 2], [6, 2, 2]]), lengths=torch.tensor([3, 2]), bos=1),
        A + "decoding.beam_step": lambda: _call(
            attnbook.decoding.beam_step, scores=torch.zeros(2, 3),
            lengths=torch.ones(2, 3, dtype=torch.long),
            finished=torch.zeros(2, 3, dtype=torch.bool),
            log_probs=torch.log_softmax(_q(3, 6), -1), eos=2, alpha=0.6),
        A + "decoding.length_normalised": lambda: _call(
            attnbook.decoding.length_normalised, scores=-_weights(),
            lengths=torch.ones(3, 4, dtype=torch.long) * 2, alpha=0.6),
        A + "multihead.split_heads": lambda: _call(attnbook.multihead.split_heads, x=_x(),
                                                   num_heads=2),
        A + "multihead.merge_heads": lambda: _call(attnbook.multihead.merge_heads,
                                                   x=torch.randn(2, 2, 5, 4)),
        A + "multihead.expand_kv": lambda: _call(attnbook.multihead.expand_kv,
                                                 x=torch.randn(2, 1, 5, 4), num_heads=2),
        A + "multihead.MultiHeadAttention": lambda: _call(attnbook.multihead.MultiHeadAttention,
                                                          d_model=8, num_heads=2),
        A + "multihead.MultiHeadAttention.forward": lambda: _call(
            _module(A + "multihead.MultiHeadAttention", 8, 2), queries=_x(), keys=_q(6, 8),
            values=_q(6, 8), mask=torch.ones(5, 6, dtype=torch.bool)),
        A + "multihead.copy_from_torch": lambda: _call(
            attnbook.multihead.copy_from_torch, ours=_module(A + "multihead.MultiHeadAttention",
                                                             8, 2),
            theirs=torch.nn.MultiheadAttention(8, 2, batch_first=True)),
        A + "multihead.num_parameters": lambda: _call(attnbook.multihead.num_parameters,
                                                      module=torch.nn.Linear(2, 3)),
        A + "self_attention.SelfAttention.forward": lambda: _call(
            _module(A + "self_attention.SelfAttention", 8), x=_x(),
            mask=torch.ones(5, 5, dtype=torch.bool)),
        A + "self_attention.OrderClassifier": lambda: _call(
            attnbook.self_attention.OrderClassifier,
            config=attnbook.self_attention.OrderClassifierConfig(num_tokens=8, max_len=6)),
        A + "self_attention.OrderClassifier.forward": lambda: _call(
            _module(A + "self_attention.OrderClassifier",
                    attnbook.self_attention.OrderClassifierConfig(num_tokens=8, max_len=6)),
            tokens=_ids(2, 6, 8)),
        A + "positional.apply_rope": lambda: _call(attnbook.positional.apply_rope, x=_x()),
        A + "transformer.Embedding": lambda: _call(attnbook.transformer.Embedding,
                                                   vocab_size=12, d_model=8, max_len=10, pad=0),
        A + "transformer.Embedding.forward": lambda: _call(
            _module(A + "transformer.Embedding", 12, 8, 10, 0), ids=_ids()),
        **{A + f"transformer.{k}Layer": (lambda k=k: _call(
            getattr(attnbook.transformer, f"{k}Layer"), d_model=8, num_heads=2, d_ff=16))
           for k in ("Encoder", "Decoder")},
        A + "transformer.EncoderLayer.forward": lambda: _call(_layer("Encoder"), x=_x()),
        A + "transformer.DecoderLayer.forward": lambda: _call(_layer("Decoder"), x=_x(),
                                                              memory=_q(6, 8)),
        **{A + f"transformer.{k}": (lambda k=k: _call(
            getattr(attnbook.transformer, k), num_layers=1, d_model=8, num_heads=2, d_ff=16))
           for k in ("Encoder", "Decoder")},
        A + "transformer.Encoder.forward": lambda: _call(
            _module(A + "transformer.Encoder", 1, 8, 2, 16), x=_x()),
        A + "transformer.Decoder.forward": lambda: _call(
            _module(A + "transformer.Decoder", 1, 8, 2, 16), x=_x(), memory=_q(6, 8)),
        A + "transformer.Transformer": lambda: _call(attnbook.transformer.Transformer,
                                                     cfg=_tf().cfg),
        A + "transformer.Transformer.forward": lambda: _call(
            _tf(), src=_ids(2, 6, 12), src_len=torch.tensor([6, 4]), tgt_in=_ids(2, 5, 10)),
        A + "transformer.Transformer.encode": lambda: _call(
            _tf().encode, src=_ids(2, 6, 12), src_len=torch.tensor([6, 4])),
        A + "transformer.Transformer.decode": lambda: _call(
            _tf().decode, tgt_in=_ids(2, 5, 10), memory=_q(6, 8),
            src_keep=torch.ones(2, 1, 1, 6, dtype=torch.bool)),
        A + "transformer.Transformer.log_prob_fn": lambda: _call(
            _tf().log_prob_fn, src=_ids(2, 6, 12), src_len=torch.tensor([6, 4])),
        A + "transformer.TransformerLM": lambda: _call(attnbook.transformer.TransformerLM,
                                                       cfg=_lm().cfg),
        A + "transformer.TransformerLM.forward": lambda: _call(_lm(), tokens=_ids()),
        A + "transformer.TransformerLM.log_prob_fn": lambda: _call(
            _lm().log_prob_fn, prefixes=_ids(), rows=torch.tensor([0, 1])),
        A + "transformer.check_tokens": lambda: _call(attnbook.transformer.check_tokens,
                                                      tokens=_ids(), vocab_size=10, max_len=8),
        A + "transformer.layer_norm": lambda: _call(attnbook.transformer.layer_norm, x=_x(),
                                                    weight=torch.ones(8), bias=torch.zeros(8)),
        A + "transformer.warmup_schedule": lambda: _call(
            attnbook.transformer.warmup_schedule,
            optimizer=torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0),
            d_model=8, warmup_steps=4),
        **{A + f"transformer.copy_{k.lower()}_layer_from_torch": (lambda k=k: _call(
            getattr(attnbook.transformer, f"copy_{k.lower()}_layer_from_torch"),
            ours=_layer(k), theirs=_torch_layer(k))) for k in ("Encoder", "Decoder")},
        A + "data.grammar.word_class": lambda: _call(attnbook.data.grammar.word_class,
                                                     word="varo", side="target"),
        **{A + f"data.grammar.{f}": (lambda f=f: _call(
            getattr(attnbook.data.grammar, f), tokens=list(_pairs()[0].tgt), side="target"))
           for f in ("grammar_error", "is_grammatical")},
        A + "data.grammar.sentences": lambda: _call(attnbook.data.grammar.sentences,
                                                    pairs=_pairs(), side="target"),
        A + "data.grammar.make_monolingual": lambda: _call(
            attnbook.data.grammar.make_monolingual, n_train=5, n_val=2, n_test=2, max_len=9,
            seed=0),
    }


def _adj(N=5):
    return (torch.eye(N, dtype=torch.bool) | torch.eye(N, dtype=torch.bool).roll(1, 0))


def _pointer():
    from attnbook.pointer import PointerConfig, PointerNetwork
    torch.manual_seed(0)
    return PointerNetwork(PointerConfig(d_model=8, num_heads=2, d_ff=16, num_layers=1)).eval()


def _values():
    return torch.rand(2, 5, generator=torch.Generator().manual_seed(3))


def _chapter_10():
    G, P, SE, V = A + "graph.", A + "pointer.", A + "sets.", A + "vision."
    return {
        G + "check_graph": lambda: _call(attnbook.graph.check_graph, x=torch.randn(5, 4),
                                         adj=_adj(), in_features=4),
        G + "edge_index_from_adj": lambda: _call(attnbook.graph.edge_index_from_adj, adj=_adj()),
        G + "GATLayer.forward": lambda: _call(_module(G + "GATLayer", 4, 6, 2),
                                              x=torch.randn(5, 4), adj=_adj()),
        G + "MeanLayer.forward": lambda: _call(_module(G + "MeanLayer", 4, 6),
                                               x=torch.randn(5, 4), adj=_adj()),
        G + "GraphClassifier": lambda: _call(attnbook.graph.GraphClassifier, in_features=4,
                                             hidden=6, num_classes=3, num_heads=2),
        G + "GraphClassifier.forward": lambda: _call(
            _module(G + "GraphClassifier", 4, 6, 3, "gat", 2), x=torch.randn(5, 4), adj=_adj()),
        G + "copy_from_gatconv": lambda: _call(
            attnbook.graph.copy_from_gatconv, ours=_module(G + "GATLayer", 4, 6, 2),
            theirs=importlib.import_module("torch_geometric.nn").GATConv(4, 6, heads=2)),
        P + "PointerNetwork.encode": lambda: _call(_pointer().encode, values=_values()),
        P + "PointerNetwork.decode": lambda: _call(_pointer().decode, values=_values()),
        P + "PointerNetwork.forward": lambda: _call(_pointer(), values=_values(),
                                                    order=_values().argsort(-1)),
        P + "PointerNetwork.point": lambda: _call(
            _pointer().point, e=_q(5, 8), prev=_q(4, 8),
            chosen=torch.zeros(2, 4, 5, dtype=torch.bool)),
        P + "pointer_loss": lambda: _call(attnbook.pointer.pointer_loss, scores=_q(5, 5),
                                          order=_values().argsort(-1)),
        SE + "OddOneOut.forward": lambda: _call(
            _module(SE + "OddOneOut", 64, 8, 2, 16), images=torch.rand(2, 5, 8, 8)),
        V + "patchify": lambda: _call(attnbook.vision.patchify, images=torch.rand(2, 8, 8),
                                      patch_size=2),
        V + "ViT.forward": lambda: _call(_module(V + "ViT", attnbook.vision.ViTConfig(
            d_model=8, num_heads=2, d_ff=16, num_layers=1)), images=torch.rand(2, 8, 8)),
        A + "data.digits.make_digit_sets": lambda: _call(
            attnbook.data.digits.make_digit_sets, images=torch.rand(40, 8, 8),
            labels=torch.arange(40) % 10, n=4, set_size=5, seed=0),
    }


def _chapter_11():
    E, K, L = A + "efficient.", A + "kv_cache.", A + "linear_attention."

    def append():
        cache = attnbook.kv_cache.KVCache(2)
        return _call(cache.append, layer=1, k=torch.randn(2, 2, 3, 4), v=torch.randn(2, 2, 3, 4))

    def recall():
        model = _module(L + "RecallModel", 10, 6, 8)
        return _call(model, keys=torch.tensor([[1, 2, 3], [4, 5, 6]]),
                     values=torch.tensor([[0, 1, 2], [3, 4, 5]]), query=torch.tensor([2, 4]))

    return {
        E + "peak_extra_memory": lambda: (attnbook.efficient.peak_extra_memory,
                                          {"fn": lambda: torch.ones(3)}),
        K + "KVCache.append": append,
        K + "greedy_generate": lambda: _call(attnbook.kv_cache.greedy_generate, model=_lm(),
                                             prompt=_ids(), num_tokens=2),
        K + "lm_forward_cached": lambda: _call(attnbook.kv_cache.lm_forward_cached, model=_lm(),
                                               tokens=_ids(),
                                               cache=attnbook.kv_cache.KVCache(1)),
        L + "RecallModel.forward": recall,
    }


def _cls_encoder():
    from attnbook.cls_encoder import ClsEncoder, ClsEncoderConfig
    torch.manual_seed(0)
    return ClsEncoder(ClsEncoderConfig(vocab_size=6, num_classes=3, d_model=8, num_heads=2,
                                       d_ff=16, num_layers=2, max_len=6)).eval()


def _jw_classifier():
    from attnbook.faithfulness import AttentionClassifier
    torch.manual_seed(0)
    return AttentionClassifier(6, 3, d=8).eval()


def _maps(B=2, L=2, T=3):
    g = torch.Generator().manual_seed(4)
    return torch.randn(B, L, 2, T, T, generator=g).softmax(-1)


def _chapter_12():
    IN, F, C = A + "interpret.", A + "faithfulness.", A + "cls_encoder."
    p, q = _weights(), _weights().flip(-1)
    return {
        IN + "residual_maps": lambda: _call(attnbook.interpret.residual_maps, weights=_maps()),
        IN + "attention_rollout": lambda: _call(attnbook.interpret.attention_rollout,
                                                weights=_maps()),
        IN + "attention_flow": lambda: _call(attnbook.interpret.attention_flow,
                                             weights=_maps(B=1), query=0),
        IN + "leave_one_out": lambda: _call(attnbook.interpret.leave_one_out,
                                            model=_cls_encoder(), tokens=_ids(2, 5, 6)),
        IN + "gradient_x_input": lambda: _call(attnbook.interpret.gradient_x_input,
                                               model=_cls_encoder(), tokens=_ids(2, 5, 6)),
        IN + "rank_agreement": lambda: _call(attnbook.interpret.rank_agreement, a=p, b=q),
        C + "ClsEncoder.forward": lambda: _call(_cls_encoder(), tokens=_ids(2, 5, 6),
                                                keep=torch.ones(2, 5, dtype=torch.bool)),
        C + "ClsEncoder.embed": lambda: _call(_cls_encoder().embed, tokens=_ids(2, 5, 6)),
        C + "ClsEncoder.classify": lambda: _call(_cls_encoder().classify, x=_x(8)),
        F + "js_distance": lambda: _call(attnbook.faithfulness.js_distance, p=p, q=q),
        F + "tv_distance": lambda: _call(attnbook.faithfulness.tv_distance, p=p, q=q),
        F + "AttentionClassifier": lambda: _call(attnbook.faithfulness.AttentionClassifier,
                                                 vocab_size=6, num_classes=3, d=8),
        F + "AttentionClassifier.forward": lambda: _call(_jw_classifier(), tokens=_ids(2, 5, 6)),
        F + "AttentionClassifier.features": lambda: _call(_jw_classifier().features,
                                                          tokens=_ids(2, 5, 6)),
        F + "AttentionClassifier.readout": lambda: _call(
            _jw_classifier().readout, x=_x(8), weights=_q(1, 5)[:, 0].softmax(-1)),
        F + "adversarial_attention": lambda: _call(attnbook.faithfulness.adversarial_attention,
                                                   model=_jw_classifier(), tokens=_ids(2, 5, 6),
                                                   eps=0.01, steps=3),
    }


def _load_part_iv():
    """The Part IV baselines, for the modules that exist (they land during this work)."""
    for m in ("decoding", "multihead", "self_attention", "positional", "transformer",
              "data.grammar", "data.lookup_task", "data.order_task", "graph", "pointer",
              "sets", "vision", "data.digits", "efficient", "kv_cache", "linear_attention",
              "interpret", "faithfulness", "cls_encoder"):
        try:
            importlib.import_module(A + m)
        except ImportError:
            continue
    return {k: v for k, v in {**_part_iv(), **_chapter_10(), **_chapter_11(),
                                **_chapter_12()}.items()
            if k.rsplit(".", 1)[0] in sys.modules or k.rsplit(".", 2)[0] in sys.modules}


BASELINES.update(_load_part_iv())

# Functions whose documentation accepts NumPy arrays (and returns the same kind).
ACCEPTS_NUMPY = {A + "softmax.softmax": "x", A + "softmax.log_softmax": "x",
                 A + "softmax.logsumexp": "x", A + "softmax.entropy": "p",
                 A + "shapes.check_shape": "x", A + "shapes.check_float": "x",
                 A + "shapes.check_nonempty": "x",
                 A + "shapes.check_not_nan": "x", A + "plotting.show_heatmaps": "weights"}

# Returns that look silent to the generic rules but are documented: (path, argument) -> why.
DOCUMENTED = {
    (A + "shapes.check_float", "x"): "checks the dtype only; a nan is a float",
    (A + "shapes.check_shape", "x"): "checks the shape only",
    (A + "shapes.check_tensor", "x"): "checks the type and dtype only",
    (A + "shapes.check_nonempty", "x"): "checks the size only; a nan is an entry",
    (A + "shapes.check_nonempty", "dim"): "any axis may be the one that must not be empty",
    (A + "shapes.check_number", "above"): "a bound to compare with: -1.0 is a fine bound",
    (A + "hard_attention.hard_attention", "values"): "a nan reaches the output only where "
                                                      "that position is chosen",
    (A + "attention.LocationScore.forward", "keys"): "the location score never reads the "
                                                     "keys, only their number S",
    (A + "plotting.show_heatmaps", "weights"): "a nan weight is drawn as a blank cell",
    (A + "hard_attention.gaussian_window", "positions"): "the Gaussian is defined at any "
                                                         "integer position",
    (A + "transformer.TransformerLM.log_prob_fn", "rows"): "rows is ignored (documented)",
    (A + "decoding.BigramLM.log_prob_fn", "rows"): "a bigram model ignores rows",
    (A + "decoding.beam_step", "lengths"): "a length has no upper bound (10**6 tokens is "
                                           "long, not wrong); negative lengths are refused",
    (A + "decoding.length_normalised", "lengths"): "a length has no upper bound (10**6 "
                                                   "tokens is long, not wrong); lengths < 1 "
                                                   "are refused",
}

# String arguments that only label things (a name in a message, a bar's text).
LABELS = {"name", "desc", "xlabel", "ylabel", "title", "built", "cmap"}

# Modules that landed in the last hour of this test's writing (chapter 10), still being
# written by their authors: each failing call is listed in the expected failure's reason.
IN_PROGRESS = {m: "chapter 10 module, landed while this test was written; not fixed yet"
               for m in (A + "graph", A + "pointer", A + "sets", A + "vision",
                         A + "data.digits", A + "data.graphs", A + "data.sorting")}

# Gaps found by this test and not fixed yet: qualname -> the precise reason. The test of
# such a function is an expected failure that prints its outcomes. None is left: chapter
# 9's transformer, decoding and data.grammar were the last.
KNOWN_GAPS: dict[str, str] = {}


# ---------------------------------------------------------------- discovery

def _is_record(cls) -> bool:
    """A dataclass that only stores its fields (no validation): nothing to refuse."""
    return dataclasses.is_dataclass(cls) and not hasattr(cls, "__post_init__")


def discover() -> dict[str, str | None]:
    """Every public callable: qualname -> None if testable, else the reason it is not."""
    found: dict[str, str | None] = {}
    for info in pkgutil.walk_packages(attnbook.__path__, "attnbook."):
        if any(info.name.startswith(m) for m in OUT_OF_SCOPE):
            continue
        module = importlib.import_module(info.name)
        names = getattr(module, "__all__", None) or [n for n in vars(module)
                                                     if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name)
            if getattr(obj, "__module__", None) != info.name:
                continue  # imported from elsewhere
            path = f"{info.name}.{name}"
            if inspect.isfunction(obj):
                found[path] = None
            elif inspect.isclass(obj):
                if _is_record(obj):
                    found[path] = "a record (dataclass) that stores its fields"
                    continue
                found[path] = None
                if issubclass(obj, torch.nn.Module):
                    found[f"{path}.forward"] = None
                for meth, fn in vars(obj).items():
                    if (not meth.startswith("_") and inspect.isfunction(fn)
                            and not hasattr(torch.nn.Module, meth)):  # e.g. extra_repr
                        found[f"{path}.{meth}"] = None
    for path, make in BASELINES.items():
        if make is None:
            found[path] = "helper taking (tensor, name) pairs or a module: covered by callers"
    return found


# ---------------------------------------------------------------- baselines from signatures

class NoBaseline(Exception):
    pass


def _hints(fn) -> dict:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # a forward reference that does not resolve: go without hints
        return {}


def _sample(annotation, name):
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = options[0] if options else None
    if annotation is torch.Tensor:
        return torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
    if annotation is int:
        return 4
    if annotation is float:
        return 0.5
    if annotation is bool:
        return True
    if inspect.isclass(annotation) and dataclasses.is_dataclass(annotation):
        return annotation(**_auto_kwargs(annotation))
    raise NoBaseline(f"no sample for {name}: {annotation}")


def _auto_kwargs(fn) -> dict:
    kwargs = {}
    hints = _hints(fn.__init__ if inspect.isclass(fn) and not dataclasses.is_dataclass(fn)
                   else fn)
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or name == "self":
            continue
        if p.default is not p.empty:
            if type(p.default) in (int, float):
                kwargs[name] = p.default  # a size or a number with a default: mutate it too
            continue
        kwargs[name] = _sample(hints.get(name, p.annotation), name)
    return kwargs


def _resolve(path):
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(path)


def baseline(path):
    """(callable, kwargs) of a valid call of ``path``."""
    if path in BASELINES:
        return BASELINES[path]()
    owner, _, meth = path.rpartition(".")
    obj = _resolve(path)
    if inspect.isclass(_resolve(owner)) and not inspect.isclass(obj):
        cls = _resolve(owner)
        ctor = BASELINES.get(owner)
        instance = (ctor() if ctor else (cls, _auto_kwargs(cls)))
        instance = instance[0](**instance[1])
        fn = instance if meth == "forward" else getattr(instance, meth)
        return fn, _auto_kwargs(getattr(cls, meth))
    return obj, _auto_kwargs(obj)


# ---------------------------------------------------------------- mutations

def _nan_at_first(x):
    x = x.detach().clone()
    x.view(-1)[0] = math.nan
    return x


def mutations(value, default, name=""):
    """(kind, label, bad value) for one argument; kind says how a return is judged."""
    out = []
    if name in LABELS:
        return out
    if isinstance(value, torch.Tensor):
        out += [("type", "numpy array", value.detach().numpy()),
                ("type", "list", value.tolist()),
                ("type", "string", "abc")]
        if value.dim() > 0:
            out.append(("type", "python number", 1))
        out.append(("shape", "one more dim", value[None].repeat(2, *[1] * value.dim())))
        if value.dim() > 0:
            out.append(("shape", "one fewer dim", value[0]))
        if value.dim() > 0 and value.shape[0] > 0:
            out.append(("empty", "empty first dim", value[:0]))
        if value.dim() > 1:
            out.append(("empty", "empty last dim", value[..., :0]))
        if value.is_floating_point():
            out += [("dtype", "int64", value.detach().long()),
                    ("dtype", "float64", value.detach().double()),
                    ("nan", "nan", _nan_at_first(value))]
        elif value.dtype == torch.bool:
            out.append(("dtype", "float 0/1", value.float()))
        else:
            out += [("dtype", "float", value.float()),
                    ("value", "negative ids", value - 100),
                    ("value", "huge ids", value + 10**6)]
    elif isinstance(value, bool):
        pass  # any truthy value is a fine flag
    elif isinstance(value, int):
        out += [m for m in [("value", "-1", -1), ("empty", "0", 0)] if m[2] != value]
        out += [("type", "2.5", 2.5), ("type", "string '3'", "3")]
    elif isinstance(value, float):
        out += [m for m in [("nan", "nan", math.nan), ("value", "-1.0", -1.0),
                            ("empty", "0.0", 0.0), ("inf", "inf", math.inf)] if m[2] != value]
        out.append(("type", "string", "x"))
    elif isinstance(value, str):
        out += [("str", "unknown name", "bogus"), ("type", "int", 3)]
    elif isinstance(value, list | tuple | set | dict):
        out += [("type", "string", "a b c"), ("type", "int", 3)]
        out.append(("empty", "empty", type(value)()))
        if value and isinstance(value, list | tuple) and isinstance(next(iter(value)),
                                                                    list | tuple):
            out.append(("type", "nested once more", [value]))
    elif callable(value) and not isinstance(value, torch.nn.Module):
        out += [("type", "int", 3)]
    else:
        out += [("type", "string", "x"), ("type", "int", 3)]
    if default is not None and not isinstance(value, bool):
        out.append(("type", "None", None))
    return out


# ---------------------------------------------------------------- running and sorting

class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def _run(fn, kwargs):
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT)
    try:
        return fn(**kwargs), None
    except Hang:
        return None, Hang()
    except Exception as e:  # noqa: BLE001 -- sorted by classify
        return None, e
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        plt.close("all")


def _raised_in_attnbook(error) -> bool:
    tb = error.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and last.startswith(SRC)


def _has_nan(result) -> bool:
    if isinstance(result, torch.Tensor):
        return result.is_floating_point() and bool(result.detach().isnan().any())
    if isinstance(result, np.ndarray):
        return np.issubdtype(result.dtype, np.floating) and bool(np.isnan(result).any())
    if isinstance(result, float):
        return math.isnan(result)
    if isinstance(result, tuple | list):
        return any(_has_nan(r) for r in result)
    if dataclasses.is_dataclass(result):
        return any(_has_nan(getattr(result, f.name)) for f in dataclasses.fields(result))
    return False


def _names(name, kind, kwargs) -> list[str]:
    """The words a clear message may use for argument ``name``: its own name (and the
    label a check helper was given); for a size that no longer matches another
    argument (shape, empty, dtype), the name of any argument of the call."""
    names = [name]
    if isinstance(kwargs.get("name"), str):
        names.append(kwargs["name"])
    if kind in ("shape", "empty", "dtype"):
        names += list(kwargs)
    return names


def _annotated(fn, name, kinds) -> bool:
    """Is ``name`` annotated to accept one of ``kinds`` (e.g. ``torch.Tensor | float``)?"""
    hints = _hints(fn.forward if isinstance(fn, torch.nn.Module) else fn)
    annotation = hints.get(name)
    return any(a in kinds for a in (typing.get_args(annotation) or (annotation,)))


def classify(path, name, kind, label, result, error, kwargs=None, fn=None) -> str:
    if isinstance(error, Hang):
        return "hang"
    if error is not None:
        if not isinstance(error, TypeError | ValueError) or not _raised_in_attnbook(error):
            return "raw"
        words = "|".join(re.escape(n) for n in _names(name, kind, kwargs or {}))
        return "clear" if re.search(rf"\b({words})\b", str(error)) else "unclear"
    if (path, name) in DOCUMENTED:
        return "accepted"
    if kind == "type":
        numpy_ok = ACCEPTS_NUMPY.get(path) == name and label == "numpy array"
        number_ok = label == "python number" and _annotated(fn, name, (int, float))
        none_ok = label == "None" and _annotated(fn, name, (type(None),))
        return "accepted" if numpy_ok or number_ok or none_ok else "silent"
    if kind == "value":
        return "silent"
    if kind == "nan":
        return "accepted" if _has_nan(result) else "silent"
    return "accepted"  # shape, dtype, empty, inf, a new name: a legitimate result is possible


@functools.cache
def sweep(path) -> tuple:
    """Outcomes of every mutation of ``path``: ((name, kind, label, outcome, message), ...)."""
    try:
        fn, kwargs = baseline(path)
    except Exception as e:  # noqa: BLE001 -- reported as the row below
        return (("<baseline>", "baseline", "valid call", "baseline fails",
                 f"cannot build a baseline ({type(e).__name__}: {e}); add one to BASELINES"),)
    _, error = _run(fn, kwargs)
    if error is not None:
        return (("<baseline>", "baseline", "valid call", "baseline fails",
                 f"{type(error).__name__}: {error}"),)
    params = inspect.signature(fn.forward if isinstance(fn, torch.nn.Module) else fn).parameters
    rows = []
    for name, value in kwargs.items():
        default = params[name].default if name in params else inspect.Parameter.empty
        for kind, label, bad in mutations(value, default, name):
            fn, fresh = baseline(path)  # fresh arguments: a call may have changed them
            result, error = _run(fn, {**fresh, name: bad})
            outcome = classify(path, name, kind, label, result, error, fresh, fn)
            message = "" if error is None else f"{type(error).__name__}: {error}"
            rows.append((name, kind, label, outcome, message[:160]))
    return tuple(rows)


def _testable():
    return sorted(p for p, reason in discover().items() if reason is None)


BAD = ("hang", "silent", "raw", "unclear", "baseline fails")


@pytest.mark.parametrize("path", _testable())
def test_bad_input_is_refused_in_words(path):
    rows = sweep(path)
    bad = [r for r in rows if r[3] in BAD]
    report = "\n".join(f"  {n} <- {label}: {outcome}  {msg}" for n, _, label, outcome, msg in bad)
    if path in KNOWN_GAPS and bad:
        pytest.xfail(f"{KNOWN_GAPS[path]}\n{report}")
    module = next((m for m in IN_PROGRESS if path.startswith(m + ".")), None)
    if module and bad:
        pytest.xfail(f"{IN_PROGRESS[module]}; the calls not refused in words:\n{report}")
    assert not bad, f"{path}: {len(bad)} of {len(rows)} bad calls not refused in words:\n{report}"


def test_every_public_callable_is_covered_or_has_a_reason():
    found = discover()
    assert len([p for p, r in found.items() if r is None]) > 60
    unknown = [p for p in BASELINES if p not in found  # chapter 10's API is still moving:
               and not any(p.startswith(m + ".") for m in IN_PROGRESS)]
    assert not unknown, f"BASELINES names callables that do not exist: {unknown}"


def summary(paths) -> collections.Counter:
    counts = collections.Counter()
    for path in paths:
        rows = sweep(path)
        counts.update(r[3] for r in rows)
    return counts


# The modules written before this test (chapters 1-6 and the core): the measured sweep.
CORE = ("attention", "data.embeddings", "data.marker_task", "data.regression",
        "data.translation", "env", "hard_attention", "kernel_regression", "metrics",
        "plotting", "seq2seq", "shapes", "similarity", "softmax", "train")


def _core_paths():
    return [p for p in _testable() if any(p.startswith(f"attnbook.{m}.") for m in CORE)]


def test_sweep_of_chapters_1_to_6_meets_the_targets():
    counts = summary(_core_paths())
    total = sum(counts.values())
    should_refuse = counts["clear"] + counts["unclear"] + counts["raw"]
    assert total >= 300, counts
    assert counts["hang"] == 0 and counts["silent"] == 0, counts
    assert counts["baseline fails"] == 0, counts
    assert counts["clear"] >= 0.9 * should_refuse, counts


# ---------------------------------------------------------------- random tensors

def _tensor_arguments():
    out = []
    for path in _core_paths():
        _, kwargs = BASELINES[path]() if path in BASELINES else (None, {})
        out += [(path, n) for n, v in kwargs.items() if isinstance(v, torch.Tensor)]
    return out


TENSOR_ARGUMENTS = _tensor_arguments()


def _random_tensor(rng: random.Random) -> torch.Tensor:
    """Up to 4 axes of 0-4 entries; float32, float64, int64 or bool; floats in [-10, 10]
    mixed with nan, +-inf, 0 and +-1e30."""
    shape = [rng.randint(0, 4) for _ in range(rng.randint(0, 4))]
    dtype = rng.choice([torch.float32, torch.float64, torch.int64, torch.bool])
    n = math.prod(shape)
    if dtype.is_floating_point:
        special = [math.nan, math.inf, -math.inf, 0.0, 1e30, -1e30]
        values = [rng.choice(special) if rng.random() < 0.3 else rng.uniform(-10, 10)
                  for _ in range(n)]
    else:
        values = [rng.randint(-3, 20) for _ in range(n)]
    return torch.tensor(values, dtype=torch.float64).reshape(shape).to(dtype)


def test_random_tensors_are_answered_or_refused_in_words():
    """Any shape, dtype and value in one argument: a result or an attnbook error that
    names one of the function's arguments, never a hang or a PyTorch internal.

    Four random tensors for every tensor argument, from a seeded generator rather than
    Hypothesis: Hypothesis mixes constants from every local module the session has imported
    into its draws, so its "derandomized" cases differed between this file run alone and
    the whole suite."""
    rng = random.Random(0)
    problems = []
    for path, name in [case for case in TENSOR_ARGUMENTS for _ in range(4)]:
        x = _random_tensor(rng)
        fn, kwargs = baseline(path)
        result, error = _run(fn, {**kwargs, name: x})
        case = f"{path}({name} of shape {tuple(x.shape)}, {x.dtype})"
        if isinstance(error, Hang):
            problems.append(f"{case} hangs")
        elif error is not None:
            names = "|".join(re.escape(k) for k in _names(name, "shape", kwargs))
            if not (isinstance(error, TypeError | ValueError) and _raised_in_attnbook(error)):
                problems.append(f"{case}: raw {error!r}")
            elif not re.search(rf"\b({names})\b", str(error)):
                problems.append(f"{case}: the message names no argument: {error}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- options left at their defaults

# (path, argument): why a value the test below calls bad is fine there.
LEGITIMATE_OPTION_VALUES = {
    (A + "shapes.check_positive_int", "minimum"): "a bound to compare with, not a size: "
                                                   "-1 or 2.5 are meaningful bounds",
    (A + "shapes.check_distribution", "dim"): "an axis: -1 is the last one",
    (A + "shapes.check_log_probs", "dim"): "an axis: -1 is the last one",
}


def test_options_left_at_their_defaults_are_checked_too():
    """The mutations above change only the arguments a baseline passes; an option left at
    its default (``kdim=None``, ``eps=1e-8``, ``vmax=None``) is never mutated there. Give
    every numeric option a wrong value in turn: an int option 2.5, "x" and -1, a float
    option "x" and nan; each must be refused in words."""
    problems = []
    for path in _testable():
        if BASELINES.get(path, 1) is None:
            continue
        try:
            fn, kwargs = baseline(path)
            params = inspect.signature(fn).parameters
        except (NoBaseline, TypeError, ValueError):
            continue
        for name, p in params.items():
            if (name in kwargs or p.default is inspect.Parameter.empty
                    or isinstance(p.default, bool) or "bool" in str(p.annotation)
                    or (path, name) in LEGITIMATE_OPTION_VALUES):
                continue
            ann = str(p.annotation)
            if "int" in ann or isinstance(p.default, int):
                bads = (2.5, "x", -1)
            elif "float" in ann or isinstance(p.default, float):
                bads = ("x", math.nan)
            else:
                continue
            for bad in bads:
                _, error = _run(fn, {**kwargs, name: bad})
                if error is None:
                    problems.append(f"{path}({name}={bad!r}) accepted")
                elif not (isinstance(error, TypeError | ValueError)
                          and _raised_in_attnbook(error)):
                    problems.append(f"{path}({name}={bad!r}): raw {error!r}"[:200])
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- the cases of issue 20

def test_bucketed_batches_refuses_at_once_instead_of_looping_forever():
    from attnbook.data.translation import bucketed_batches
    src, tgt = _vocabs()
    for pairs, size, word in ((_pairs(), -2, "batch_size"), (_pairs(), 0, "batch_size"),
                              ([], 2, "pairs")):
        _, error = _run(lambda p=pairs, n=size: next(bucketed_batches(p, n, src, tgt)), {})
        assert isinstance(error, ValueError) and word in str(error), error


def test_a_b1_baseline_is_refused_not_broadcast_to_b_by_b():
    from attnbook.hard_attention import reinforce_loss
    log_probs = torch.log_softmax(_logits(), -1)[:, 0]
    with pytest.raises(ValueError, match=r"baseline should have 1 dimensions \(B\)"):
        reinforce_loss(log_probs, torch.tensor([1.0, 0.0]), torch.tensor([[0.5], [0.5]]))


def test_bleu_refuses_strings_tensors_and_several_references():
    from attnbook.metrics import corpus_bleu, token_accuracy
    ids = torch.tensor([[4, 5, 6, 7, 8]])
    with pytest.raises(TypeError, match="torch.Tensor of token ids.*tolist"):
        corpus_bleu(list(ids), list(ids))  # tensors would be hashed by identity: BLEU 0
    assert corpus_bleu(ids.tolist(), ids.tolist()).score == pytest.approx(100.0)
    with pytest.raises(TypeError, match="not a string"):
        token_accuracy("the cat", "the cat".split())
    refs = [[["the", "cat"], ["a", "cat"]]]
    with pytest.raises(TypeError, match="one reference per hypothesis"):
        corpus_bleu([["the", "cat"]], refs)
    with pytest.raises(ValueError, match="empty"):
        corpus_bleu([], [])


def test_entropy_refuses_counts_and_has_a_finite_gradient_at_zero():
    from attnbook.softmax import entropy
    with pytest.raises(ValueError, match="counts"):
        entropy(torch.tensor([3.0, 1.0]))
    p = torch.tensor([0.0, 0.25, 0.75], requires_grad=True)
    entropy(p).backward()
    expected = torch.tensor([0.0, -math.log(0.25) - 1, -math.log(0.75) - 1])
    torch.testing.assert_close(p.grad, expected)
    np.testing.assert_allclose(entropy(np.array([0.0, 0.5, 0.5])), math.log(2))


def test_check_float_says_how_to_convert_a_numpy_array():
    from attnbook.shapes import check_float
    with pytest.raises(TypeError, match=r"scores\.astype\(np\.float32\)"):
        check_float(np.arange(3), "scores")
    with pytest.raises(TypeError, match=r"scores\.float\(\)"):
        check_float(torch.arange(3), "scores")


def test_kernels_refuse_negative_distances_and_nan_keys():
    from attnbook.kernel_regression import kernel_weights, nadaraya_watson
    with pytest.raises(ValueError, match="d2 holds negative values"):
        kernel_weights(torch.tensor([[-1.0, 0.5]]), 1.0)
    keys = torch.tensor([0.0, math.nan, 2.0])
    with pytest.raises(ValueError, match="keys contains nan"):  # boxcar would drop it silently
        nadaraya_watson(torch.tensor([1.0]), keys, torch.ones(3), kernel="boxcar")
    with pytest.raises(ValueError, match="centre contains nan"):
        attnbook.hard_attention.local_p_weights(torch.randn(1, 9), torch.tensor([math.nan]), 2)


def test_soft_attention_passes_a_nan_on():
    from attnbook.attention import scaled_dot_product_attention
    keys = _q(5)
    keys[0, 2, 0] = math.nan
    out, weights = scaled_dot_product_attention(_q(), keys, _q(5))
    assert out[0].isnan().all() and not out[1].isnan().any()


def test_messages_name_the_right_argument():
    from attnbook.attention import masked_softmax
    from attnbook.similarity import nearest_neighbours
    with pytest.raises(TypeError, match="mask should be a torch.Tensor.*numpy.*bool"):
        masked_softmax(_q(), mask=np.ones((3, 4), dtype=bool))
    with pytest.raises(TypeError, match="table should hold floating-point"):
        nearest_neighbours(torch.randn(4), torch.ones(5, 4, dtype=torch.long))
    model = _seq2seq()
    with pytest.raises(ValueError, match=r"src should have 2 dimensions"):
        model(torch.tensor([4, 5, 6]), torch.tensor([3]), torch.tensor([[1, 4]]))


def test_modules_compare_inputs_with_the_sizes_they_were_built_for():
    from attnbook.attention import GeneralScore
    with pytest.raises(ValueError, match="queries have 8 features .* GeneralScore was built "
                                         "for query_size=16"):
        GeneralScore(16, 4)(torch.randn(2, 3, 8), torch.randn(2, 5, 4))
    with pytest.raises(TypeError, match="query_size should be an int, got the float 2.5"):
        GeneralScore(2.5, 4)
    model, memory = _memory("bahdanau")
    with pytest.raises(ValueError, match="tgt_in holds the token id 10, but the vocabulary "
                                         "has 10 ids"):
        model.decoder(torch.tensor([[1, 10], [1, 2]]), memory)
    with pytest.raises(ValueError, match="max_len should be >= 1"):
        attnbook.seq2seq.greedy_decode(model, *_src(), bos=1, eos=2, max_len=0)


def test_empty_inputs_give_empty_results_or_a_clear_refusal():
    from attnbook.attention import masked_softmax, scaled_dot_product_attention
    assert masked_softmax(torch.empty(2, 0, 5)).shape == (2, 0, 5)
    out, w = scaled_dot_product_attention(torch.empty(0, 3, 4), torch.empty(0, 5, 4),
                                          torch.empty(0, 5, 6))
    assert out.shape == (0, 3, 6) and w.shape == (0, 3, 5)
    assert attnbook.softmax.logsumexp(torch.empty(2, 0)).eq(-math.inf).all()
    with pytest.raises(ValueError, match="src is an empty batch"):
        _seq2seq().encoder(torch.empty(0, 4, dtype=torch.long), torch.empty(0, dtype=torch.long))


# ---------------------------------------------------------------- the table, for people

def main() -> None:
    found = discover()
    per_module = collections.defaultdict(collections.Counter)
    for path in sorted(p for p, r in found.items() if r is None):
        module = ".".join(path.split(".")[:2] if not path.startswith("attnbook.data.")
                          else path.split(".")[:3])
        rows = sweep(path)
        per_module[module].update(r[3] for r in rows)
        for name, _, label, outcome, message in rows:
            if outcome in BAD:
                print(f"{path}({name} <- {label}): {outcome}  {message[:110]}")
    columns = ("clear", "unclear", "raw", "silent", "hang", "accepted", "baseline fails")
    print(f"\n{'module':34}" + "".join(f"{c[:8]:>9}" for c in columns))
    total = collections.Counter()
    for module, counts in sorted(per_module.items()):
        total.update(counts)
        print(f"{module:34}" + "".join(f"{counts[c]:>9}" for c in columns))
    print(f"{'all':34}" + "".join(f"{total[c]:>9}" for c in columns))
    core = summary(_core_paths())
    refuse = core["clear"] + core["unclear"] + core["raw"]
    print(f"\nchapters 1-6 and core: {sum(core.values())} calls; {dict(core)}; "
          f"clear {core['clear'] / max(refuse, 1):.1%} of those refused")
    for path, reason in sorted(found.items()):
        if reason is not None:
            print(f"not swept: {path}: {reason}")
    for module, reason in OUT_OF_SCOPE.items():
        print(f"not swept: {module}: {reason}")


if __name__ == "__main__":
    sys.exit(main())

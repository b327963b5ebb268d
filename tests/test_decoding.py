"""Greedy, beam search and sampling on toy next-token functions whose answers we can
enumerate."""

import itertools
import math

import numpy as np
import pytest
import torch

from attnbook.data.translation import Vocab
from attnbook.decoding import (
    BigramLM,
    Decoded,
    beam_search,
    beam_step,
    greedy,
    length_normalised,
    sample,
    sequence_log_probs,
)

BOS, EOS, V = 0, 1, 5  # tokens 2, 3, 4 are words


def toy_fn(sharpness=2.0):
    """Log-probs that depend on the whole prefix and on the row (a fixed random table)."""

    def fn(prefixes, rows):
        out = []
        for prefix, row in zip(prefixes.tolist(), rows.tolist(), strict=True):
            g = torch.Generator().manual_seed(hash((row, *prefix)) % 2**31)
            logits = sharpness * torch.randn(V, generator=g)
            logits[BOS] = -math.inf  # never predicted
            out.append(torch.log_softmax(logits, -1))
        return torch.stack(out)

    return fn


def all_sequences(max_len):
    """Every sequence the searches can return: ends with EOS, or is max_len words long."""
    words = [t for t in range(V) if t not in (BOS, EOS)]
    for n in range(max_len):
        for seq in itertools.product(words, repeat=n):
            yield [*seq, EOS]
    yield from (list(s) for s in itertools.product(words, repeat=max_len))


def exhaustive_best(fn, row, max_len, alpha=0.0):
    best, best_score = None, -math.inf
    for seq in all_sequences(max_len):
        t = torch.tensor([seq])
        lp = float(sequence_log_probs(lambda p, r: fn(p, torch.full_like(r, row)), t,
                                      torch.tensor([len(seq)]), BOS))
        score = lp / len(seq) ** alpha
        if score > best_score:
            best, best_score = seq, score
    return best, best_score


def test_width_one_beam_is_greedy():
    fn = toy_fn()
    g = greedy(fn, 6, BOS, EOS, max_len=6)
    b = beam_search(fn, 6, BOS, EOS, beam_width=1, max_len=6)
    assert g.sequences() == b.sequences()
    torch.testing.assert_close(g.log_probs, b.log_probs)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_a_wide_beam_finds_the_exhaustive_optimum(alpha):
    fn, max_len = toy_fn(), 3
    wide = beam_search(fn, 4, BOS, EOS, beam_width=V**max_len, max_len=max_len, alpha=alpha)
    for row in range(4):
        best, score = exhaustive_best(fn, row, max_len, alpha)
        got = wide.tokens[row, : wide.lengths[row]].tolist()
        assert got == best, row
        lp = float(wide.log_probs[row])
        assert abs(lp / len(best) ** alpha - score) < 1e-5


def test_beam_beats_greedy_where_greedy_is_short_sighted():
    # step 1: word 2 (0.6) beats word 3 (0.4); after 2 everything is flat, after 3 EOS is sure
    def fn(prefixes, rows):
        p = torch.full((len(prefixes), V), 1e-9)
        for i, prefix in enumerate(prefixes.tolist()):
            if len(prefix) == 1:
                p[i, 2], p[i, 3] = 0.6, 0.4
            elif prefix[1] == 2:
                p[i, 1:] = 0.25
            else:
                p[i, EOS] = 1.0
        return (p / p.sum(1, keepdim=True)).log()

    g = greedy(fn, 1, BOS, EOS, max_len=4)
    b = beam_search(fn, 1, BOS, EOS, beam_width=2, max_len=4)
    assert b.sequences() == [[3]]
    assert float(b.log_probs) == pytest.approx(math.log(0.4), abs=1e-6)
    assert float(b.log_probs) > float(g.log_probs)


def test_length_normalisation_prefers_longer_sentences():
    # EOS right away: p = 0.3; else a 3-word sentence w 2 2 <eos>, p = 0.35 * 0.9 * 0.9
    def fn(prefixes, rows):
        p = torch.full((len(prefixes), V), 1e-9)
        for i, prefix in enumerate(prefixes.tolist()):
            if len(prefix) == 1:
                p[i, EOS], p[i, 2], p[i, 3] = 0.3, 0.35, 0.35
            elif len(prefix) < 4:
                p[i, 2], p[i, EOS] = 0.9, 0.1
            else:
                p[i, EOS] = 1.0
        return (p / p.sum(1, keepdim=True)).log()

    plain = beam_search(fn, 1, BOS, EOS, beam_width=3, max_len=6, alpha=0.0)
    normalised = beam_search(fn, 1, BOS, EOS, beam_width=3, max_len=6, alpha=1.0)
    assert plain.sequences() == [[]]  # log 0.3 = -1.20 beats log(0.35 * 0.9^2) = -1.26
    assert normalised.sequences()[0][1:] == [2, 2]  # -1.26 / 4 beats -1.20 / 1


def test_beam_step_carries_finished_beams_unchanged():
    scores = torch.tensor([[-1.0, -2.0]])
    lengths = torch.tensor([[3, 2]])
    finished = torch.tensor([[True, False]])
    logp = torch.log_softmax(torch.tensor([[[0.0, 5, 0, 0, 0], [0.0, 0, 9, 0, 0]]]), -1)
    s, n, f, parent, word = beam_step(scores, lengths, finished, logp, EOS, alpha=0.0)
    assert parent[0, 0] == 0 and word[0, 0] == EOS and s[0, 0] == -1.0 and n[0, 0] == 3
    assert parent[0, 1] == 1 and word[0, 1] == 2 and n[0, 1] == 3 and not f[0, 1]


def test_reported_log_probs_are_the_sequences_log_probs():
    fn = toy_fn()
    for out in [greedy(fn, 5, BOS, EOS, max_len=7),
                beam_search(fn, 5, BOS, EOS, beam_width=3, max_len=7, alpha=0.7),
                sample(fn, 5, BOS, EOS, max_len=7, temperature=1.5,
                       generator=torch.Generator().manual_seed(0))]:
        assert isinstance(out, Decoded)
        again = sequence_log_probs(fn, out.tokens, out.lengths, BOS)
        torch.testing.assert_close(out.log_probs, again)
        for row, n in zip(out.tokens, out.lengths, strict=True):  # eos, then eos as filler
            assert (row[n:] == EOS).all()


def test_batched_beam_equals_one_input_at_a_time():
    fn = toy_fn(1.0)
    batched = beam_search(fn, 4, BOS, EOS, beam_width=3, max_len=6, alpha=0.5)
    for row in range(4):
        alone = beam_search(lambda p, r, row=row: fn(p, torch.full_like(r, row)), 1, BOS, EOS,
                            beam_width=3, max_len=6, alpha=0.5)
        assert alone.sequences()[0] == batched.sequences()[row]


def test_searches_do_not_ask_for_finished_sequences():
    """Finished rows are skipped (they cost as much as live ones otherwise); the results
    are those of a search that scores every row at every step."""
    fn, asked = toy_fn(1.0), []

    def counting(prefixes, rows):
        asked.append(len(prefixes))
        return fn(prefixes, rows)

    for search, n in [(lambda f: greedy(f, 8, BOS, EOS, max_len=8), 8),
                      (lambda f: beam_search(f, 8, BOS, EOS, beam_width=3, max_len=8), 24)]:
        asked.clear()
        out = search(counting)
        assert asked[0] == n and min(asked) < n  # some rows finished early
        for row in range(8):  # one row at a time: no other row can finish first
            alone = search(lambda p, r, row=row: fn(p, torch.full_like(r, row)))
            assert alone.sequences()[0] == out.sequences()[row]


def test_sampling_limits_are_greedy():
    fn = toy_fn()
    g = greedy(fn, 8, BOS, EOS, max_len=6)
    cold = sample(fn, 8, BOS, EOS, max_len=6, temperature=1e-4)
    top1 = sample(fn, 8, BOS, EOS, max_len=6, temperature=3.0, top_k=1)
    assert cold.sequences() == g.sequences() == top1.sequences()


def test_sampling_follows_temperature_and_top_k():
    logits = torch.tensor([-math.inf, 0.0, 1.0, 2.0, 0.5])

    def fn(prefixes, rows):
        return torch.log_softmax(logits, -1).expand(len(prefixes), -1)

    n = 20000
    for temperature, top_k in [(1.0, None), (2.0, None), (0.5, 2)]:
        out = sample(fn, n, BOS, EOS, max_len=1, temperature=temperature, top_k=top_k,
                     generator=torch.Generator().manual_seed(1))
        freq = torch.bincount(out.tokens[:, 0], minlength=V).float() / n
        want = logits / temperature
        if top_k is not None:
            want = want.masked_fill(want < want.topk(top_k).values[-1], -math.inf)
        assert (freq - torch.softmax(want, -1)).abs().max() < 0.015, (temperature, top_k)


def test_bad_arguments():
    fn = toy_fn()
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(fn, 2, BOS, EOS, beam_width=0)
    with pytest.raises(ValueError, match="alpha"):
        beam_search(fn, 2, BOS, EOS, alpha=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        sample(fn, 2, BOS, EOS, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        sample(fn, 2, BOS, EOS, top_k=0)
    with pytest.raises(ValueError, match="max_len"):
        greedy(fn, 2, BOS, EOS, max_len=0)
    with pytest.raises(ValueError, match="log_prob_fn"):
        greedy(lambda p, r: torch.zeros(len(p)), 2, BOS, EOS)


def test_searches_check_the_function_and_the_token_ids():
    fn = toy_fn()
    with pytest.raises(TypeError, match="log_prob_fn should be a function"):
        greedy(3, 2, BOS, EOS)
    with pytest.raises(ValueError, match="bos should be >= 0"):
        greedy(fn, 2, -1, EOS)
    with pytest.raises(TypeError, match="eos should be an int"):
        beam_search(fn, 2, BOS, 2.5)
    with pytest.raises(TypeError, match="eos should be an int"):
        sample(fn, 2, BOS, "1")
    with pytest.raises(ValueError, match=r"eos = 5 is not a token id.*V = 5"):
        beam_search(fn, 2, BOS, V)
    with pytest.raises(ValueError, match=r"bos = 7 is not a token id"):
        # a fn that ignores prefixes: uniform log-probabilities
        greedy(lambda p, r: torch.full((len(p), V), -math.log(V)), 2, 7, EOS)
    with pytest.raises(ValueError, match="alpha"):
        beam_search(fn, 2, BOS, EOS, alpha=math.nan)
    with pytest.raises(ValueError, match="temperature should be a finite number"):
        sample(fn, 2, BOS, EOS, temperature=math.inf)
    with pytest.raises(TypeError, match="generator should be None or a torch.Generator"):
        sample(fn, 2, BOS, EOS, generator=0)
    with pytest.raises(ValueError, match="the output of log_prob_fn contains nan"):
        greedy(lambda p, r: torch.full((len(p), V), math.nan), 2, BOS, EOS)


def test_beam_step_and_length_normalised_check_their_tensors():
    scores, lengths = torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.long)
    finished = torch.zeros(2, 3, dtype=torch.bool)
    logp = torch.log_softmax(torch.randn(2, 3, V), -1)
    with pytest.raises(TypeError, match=r"scores should be a torch.Tensor.*torch.as_tensor"):
        beam_step(scores.numpy(), lengths, finished, logp, EOS)
    with pytest.raises(TypeError, match="finished should hold booleans"):
        beam_step(scores, lengths, finished.float(), logp, EOS)
    with pytest.raises(ValueError, match=r"log_probs should have shape \(B, k, V\)"):
        beam_step(scores, lengths, finished, logp[:, :2], EOS)
    with pytest.raises(TypeError, match="scores has dtype torch.float32 but log_probs"):
        beam_step(scores, lengths, finished, logp.double(), EOS)
    with pytest.raises(ValueError, match="eos should be >= 0"):
        beam_step(scores, lengths, finished, logp, -1)
    with pytest.raises(ValueError, match="alpha"):
        beam_step(scores, lengths, finished, logp, EOS, alpha=math.nan)
    with pytest.raises(ValueError, match="lengths should be >= 0"):
        beam_step(scores, lengths - 2, finished, logp, EOS)
    with pytest.raises(ValueError, match="scores contains nan"):
        beam_step(scores.fill_(math.nan), lengths, finished, logp, EOS)
    with pytest.raises(ValueError, match="lengths of shape \\(4,\\) should broadcast"):
        length_normalised(-torch.rand(2, 3), torch.ones(4, dtype=torch.long), 0.5)
    with pytest.raises(ValueError, match="lengths should be >= 1"):
        length_normalised(-torch.rand(2, 3), torch.zeros(2, 3, dtype=torch.long), 0.5)
    with pytest.raises(ValueError, match="alpha"):
        length_normalised(-torch.rand(2, 3), torch.ones(2, 3, dtype=torch.long), -1.0)
    # lengths (B, 1) broadcast over the beams
    torch.testing.assert_close(length_normalised(-torch.ones(2, 3), torch.tensor([[2], [4]]),
                                                 1.0), -torch.tensor([[0.5], [0.25]]).expand(2, 3))


def test_sequence_log_probs_checks_tokens_and_lengths():
    fn, tokens = toy_fn(), torch.tensor([[2, 3, EOS], [4, EOS, EOS]])
    with pytest.raises(TypeError, match="tokens should hold integers"):
        sequence_log_probs(fn, tokens.float(), torch.tensor([3, 2]), BOS)
    with pytest.raises(ValueError, match=r"lengths should lie in 0 \.\. T = 3"):
        sequence_log_probs(fn, tokens, torch.tensor([4, 2]), BOS)
    with pytest.raises(ValueError, match="tokens holds the token id 7.*V = 5"):
        sequence_log_probs(fn, tokens + 3, torch.tensor([3, 2]), BOS)
    with pytest.raises(ValueError, match="tokens holds the token id -1"):
        sequence_log_probs(fn, tokens - 2, torch.tensor([3, 2]), BOS)
    with pytest.raises(TypeError, match="log_prob_fn should be a function"):
        sequence_log_probs(None, tokens, torch.tensor([3, 2]), BOS)
    assert sequence_log_probs(fn, tokens[:0], torch.tensor([], dtype=torch.long),
                              BOS).shape == (0,)


def test_bigram_model_checks_its_input():
    vocab = Vocab(["a", "b", "c"])
    sentences = [["a", "b"], ("b", "a", "c")]
    with pytest.raises(TypeError, match="sentences should be a list of sentences"):
        BigramLM("a b", vocab)
    with pytest.raises(TypeError, match=r"sentences\[1\] should be a list of words.*split"):
        BigramLM([["a"], "a b"], vocab)
    with pytest.raises(TypeError, match=r"sentences\[0\] should hold words"):
        BigramLM([sentences], vocab)  # nested once too often
    with pytest.raises(ValueError, match="sentences is empty"):
        BigramLM([], vocab)
    with pytest.raises(TypeError, match="vocab should be a Vocab"):
        BigramLM(sentences, "abc")
    with pytest.raises(ValueError, match="smoothing should be a finite number > 0"):
        BigramLM(sentences, vocab, smoothing=math.nan)
    lm = BigramLM(sentences, vocab)
    with pytest.raises(ValueError, match="sentences is empty"):
        lm.perplexity([])
    with pytest.raises(TypeError, match="prefixes should be a torch.Tensor"):
        lm.log_prob_fn(np.array([[1, 4]]), None)
    with pytest.raises(ValueError, match=r"prefixes holds ids outside the vocabulary \[0, 7\)"):
        lm.log_prob_fn(torch.tensor([[1, 7]]), None)


def test_bigram_model():
    sentences = [["a", "b"], ["a", "c"], ["b", "a", "b"]] * 10
    vocab = Vocab(["a", "b", "c"])
    lm = BigramLM(sentences, vocab, smoothing=0.01)
    probs = lm.log_table[[vocab.bos, *vocab.encode(["a", "b", "c"])]].exp()
    torch.testing.assert_close(probs.sum(1), torch.ones(4))
    assert lm.log_table[:, vocab.pad].exp().max() == 0  # never predicts <pad> or <bos>
    a, b = vocab.encode(["a", "b"])
    assert lm.log_table[a, b].exp() == pytest.approx(20 / 30, abs=0.01)
    assert lm.perplexity(sentences) < lm.perplexity([["c", "c", "c"]])
    out = greedy(lm.log_prob_fn, 3, vocab.bos, vocab.eos, max_len=5)
    assert vocab.decode(out.tokens[0]) == ["a", "b"]
    with pytest.raises(ValueError, match="smoothing"):
        BigramLM(sentences, vocab, smoothing=0.0)

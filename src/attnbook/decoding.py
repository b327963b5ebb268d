"""Decoding for chapter 9: greedy search, beam search, sampling (temperature, top-k).

Every function drives a *next-token function*

    log_prob_fn(prefixes (N, t), rows (N,)) -> log-probabilities (N, V)

that, for N prefixes (each starting with ``<bos>``), returns the distribution of the next
token; ``rows[i]`` says which of the B inputs prefix i continues (a translation model
looks up that source sentence, a language model ignores it). So one search serves the
encoder–decoder (``Transformer.log_prob_fn``), the decoder-only language model
(``TransformerLM.log_prob_fn``) and the bigram model below.

Each returns a ``Decoded``: tokens (B, T') without ``<bos>``, ``<eos>`` included and
repeated after it; lengths (B,) up to and including the first ``<eos>`` (``max_len`` if
none); log_probs (B,) the sequence's log-probability, the sum of its tokens' log-probs.
"""

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

LogProbFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Decoded:
    """tokens (B, T'), lengths (B,), log_probs (B,) of the decoded sequences."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    log_probs: torch.Tensor
    eos: int

    def sequences(self) -> list[list[int]]:
        """Each sequence's token ids, up to and not including its first ``<eos>``."""
        out = []
        for row, n in zip(self.tokens.tolist(), self.lengths.tolist(), strict=True):
            out.append(row[: n - 1] if row[n - 1] == self.eos else row[:n])
        return out


def _check_common(batch_size: int, max_len: int) -> None:
    for name, value in (("batch_size", batch_size), ("max_len", max_len)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} should be a positive int, got {value!r}")


def _next(fn: LogProbFn, prefixes: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    out = fn(prefixes, rows)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != len(prefixes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"log_prob_fn should return log-probabilities of shape "
                         f"({len(prefixes)}, V), got {shape}")
    return out


def _finish(tokens, log_probs, eos, max_len) -> Decoded:
    """tokens (B, T') with eos repeated after the first one -> Decoded."""
    is_eos = tokens == eos
    first = torch.where(is_eos.any(1), is_eos.float().argmax(1) + 1,
                        torch.full_like(log_probs, max_len, dtype=torch.long))
    return Decoded(tokens, first, log_probs, eos)


@torch.no_grad()
def greedy(log_prob_fn: LogProbFn, batch_size: int, bos: int, eos: int, max_len: int = 50,
           device=None) -> Decoded:
    """At each step take the most likely token, until every sequence has produced ``eos``."""
    return _generate(log_prob_fn, batch_size, bos, eos, max_len, device,
                     pick=lambda logp: logp.argmax(-1))


@torch.no_grad()
def sample(log_prob_fn: LogProbFn, batch_size: int, bos: int, eos: int, max_len: int = 50,
           temperature: float = 1.0, top_k: int | None = None,
           generator: torch.Generator | None = None, device=None) -> Decoded:
    """Draw each token from softmax(log p / temperature), restricted to the ``top_k`` most
    likely tokens when ``top_k`` is given. Returned log_probs are under the *model's*
    distribution (temperature 1, no top-k), so samples of any temperature compare."""
    if not isinstance(temperature, int | float) or isinstance(temperature, bool) \
            or not temperature > 0:
        raise ValueError(f"temperature should be a number > 0 (use greedy() for the limit "
                         f"0), got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool)
                              or top_k < 1):
        raise ValueError(f"top_k should be None or an int >= 1, got {top_k!r}")

    def pick(logp):
        logits = logp / temperature  # (N, V)
        if top_k is not None and top_k < logits.shape[-1]:
            kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (N, 1)
            logits = logits.masked_fill(logits < kth, -math.inf)
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    return _generate(log_prob_fn, batch_size, bos, eos, max_len, device, pick)


def _generate(fn, batch_size, bos, eos, max_len, device, pick) -> Decoded:
    _check_common(batch_size, max_len)
    rows = torch.arange(batch_size, device=device)
    prefixes = torch.full((batch_size, 1), bos, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    total = torch.zeros(batch_size, device=device)
    for _ in range(max_len):
        logp = _next(fn, prefixes, rows)  # (B, V)
        y = pick(logp).masked_fill(done, eos)  # (B,)
        total += logp.gather(1, y[:, None]).squeeze(1).masked_fill(done, 0.0)
        prefixes = torch.cat([prefixes, y[:, None]], dim=1)
        done = done | (y == eos)
        if done.all():
            break
    return _finish(prefixes[:, 1:], total, eos, max_len)


def length_normalised(scores: torch.Tensor, lengths: torch.Tensor, alpha: float) -> torch.Tensor:
    """score / length ** alpha: alpha = 0 ranks by log-probability, alpha = 1 by the
    log-probability per token."""
    return scores / lengths.to(scores.dtype) ** alpha


def beam_step(scores: torch.Tensor, lengths: torch.Tensor, finished: torch.Tensor,
              log_probs: torch.Tensor, eos: int, alpha: float = 0.0):
    """One step of beam search for B inputs with k beams each.

    scores (B, k) log-probabilities so far, lengths (B, k) tokens generated so far,
    finished (B, k) beams that have produced ``eos``, log_probs (B, k, V) of the next
    token. A finished beam is carried over unchanged (as itself + ``eos``, log-prob 0).
    Candidates are ranked by ``length_normalised(score, length, alpha)``.
    Returns (scores, lengths, finished, parent beam, word), each (B, k).
    """
    B, k, V = log_probs.shape
    carry = torch.full((V,), -math.inf, device=log_probs.device)
    carry[eos] = 0.0  # a finished beam's only continuation: itself
    log_probs = torch.where(finished[..., None], carry, log_probs)
    total = scores[..., None] + log_probs  # (B, k, V)
    new_len = lengths + (~finished).long()  # (B, k)
    ranked = length_normalised(total, new_len[..., None].expand(-1, -1, V), alpha)
    best = ranked.reshape(B, k * V).topk(k, dim=-1).indices  # (B, k) over beam x word
    parent, word = best // V, best % V
    return (total.reshape(B, k * V).gather(1, best), new_len.gather(1, parent),
            finished.gather(1, parent) | (word == eos), parent, word)


@torch.no_grad()
def beam_search(log_prob_fn: LogProbFn, batch_size: int, bos: int, eos: int,
                beam_width: int = 4, max_len: int = 50, alpha: float = 0.0,
                device=None) -> Decoded:
    """Keep the ``beam_width`` best prefixes of each input; return the best finished one,
    ranked by log-probability / length ** ``alpha`` (``alpha`` = 0: pure log-probability;
    width 1 is greedy search)."""
    _check_common(batch_size, max_len)
    if not isinstance(beam_width, int) or isinstance(beam_width, bool) or beam_width < 1:
        raise ValueError(f"beam_width should be an int >= 1, got {beam_width!r}")
    if not isinstance(alpha, int | float) or alpha < 0:
        raise ValueError(f"alpha (length normalisation) should be a number >= 0, got {alpha!r}")
    B, k = batch_size, beam_width
    rows = torch.arange(B, device=device).repeat_interleave(k)  # (B k,)
    prefixes = torch.full((B * k, 1), bos, dtype=torch.long, device=device)
    scores = torch.full((B, k), -math.inf, device=device)
    scores[:, 0] = 0.0  # one live beam at the start: the others are copies of it
    lengths = torch.zeros(B, k, dtype=torch.long, device=device)
    finished = torch.zeros(B, k, dtype=torch.bool, device=device)
    for _ in range(max_len):
        logp = _next(log_prob_fn, prefixes, rows)  # (B k, V)
        scores, lengths, finished, parent, word = beam_step(
            scores, lengths, finished, logp.view(B, k, -1), eos, alpha)
        pick = (parent + torch.arange(B, device=device)[:, None] * k).reshape(-1)  # (B k,)
        prefixes = torch.cat([prefixes[pick], word.reshape(-1, 1)], dim=1)
        if finished.all():
            break
    best = length_normalised(scores, lengths.clamp(min=1), alpha).argmax(-1)  # (B,)
    index = best + torch.arange(B, device=device) * k
    tokens = prefixes[index, 1:]
    return _finish(tokens, scores.gather(1, best[:, None]).squeeze(1), eos, max_len)


@torch.no_grad()
def sequence_log_probs(log_prob_fn: LogProbFn, tokens: torch.Tensor, lengths: torch.Tensor,
                       bos: int) -> torch.Tensor:
    """Log-probability of given sequences, tokens (B, T) (no ``<bos>``), each counted over
    its first ``lengths[b]`` tokens -> (B,). Teacher forcing, one step at a time."""
    B, T = tokens.shape
    rows = torch.arange(B, device=tokens.device)
    prefixes = torch.cat([torch.full((B, 1), bos, dtype=torch.long, device=tokens.device),
                          tokens], dim=1)
    total = torch.zeros(B, device=tokens.device)
    for t in range(int(lengths.max())):
        logp = _next(log_prob_fn, prefixes[:, : t + 1], rows)
        step = logp.gather(1, tokens[:, t: t + 1]).squeeze(1)
        total += torch.where(t < lengths, step, torch.zeros_like(step))
    return total


class BigramLM:
    """The next token depends on the previous one only: add-``k`` smoothed counts.

    ``BigramLM(sentences, vocab)`` counts ``<bos> w_1 .. w_n <eos>`` transitions;
    ``log_prob_fn`` plugs it into the searches above, ``perplexity`` scores held-out text.
    """

    def __init__(self, sentences: Sequence[Sequence[str]], vocab, smoothing: float = 0.1):
        if smoothing <= 0:
            raise ValueError(f"smoothing should be > 0 (unseen pairs need some mass), "
                             f"got {smoothing!r}")
        V = len(vocab)
        counts = Counter()
        for sentence in sentences:
            ids = [vocab.bos, *vocab.encode(sentence), vocab.eos]
            counts.update(zip(ids[:-1], ids[1:], strict=True))
        table = torch.full((V, V), float(smoothing))
        for (a, b), c in counts.items():
            table[a, b] += c
        table[:, [vocab.pad, vocab.bos]] = 0.0  # never predicted
        self.log_table = (table / table.sum(1, keepdim=True)).log()  # (V, V): row = previous
        self.vocab = vocab

    def log_prob_fn(self, prefixes: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.log_table.to(prefixes.device)[prefixes[:, -1]]  # (N, V)

    def perplexity(self, sentences: Sequence[Sequence[str]]) -> float:
        """exp(mean negative log-probability per predicted token, ``<eos>`` included)."""
        nll, n = 0.0, 0
        for sentence in sentences:
            ids = [self.vocab.bos, *self.vocab.encode(sentence), self.vocab.eos]
            nll -= float(sum(self.log_table[a, b] for a, b in zip(ids[:-1], ids[1:],
                                                                  strict=True)))
            n += len(ids) - 1
        return math.exp(nll / n)

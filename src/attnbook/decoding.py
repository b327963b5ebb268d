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

Bad input is refused in words (the package's policy): ``log_prob_fn`` must be callable,
``bos``/``eos`` token ids (ints >= 0, checked against the V the first call returns), and
each of its rows must be log-probabilities (``attnbook.shapes.check_log_probs``: entries
<= 0 that log-sum-exp to 0), so logits, probabilities, a row with no possible token or a
``nan`` are refused instead of being searched (``sequence_log_probs`` passes a ``nan``
on). ``device`` is a device this machine has (``attnbook.shapes.check_device``).
"""

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from attnbook.shapes import (
    check_device,
    check_log_probs,
    check_not_nan,
    check_positive_int,
    check_same_dtype,
    check_shape,
    check_tensor,
)

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


def _check_fn(log_prob_fn) -> None:
    if not callable(log_prob_fn):
        raise TypeError(f"log_prob_fn should be a function (prefixes (N, t), rows (N,)) -> "
                        f"log-probabilities (N, V), e.g. model.log_prob_fn, "
                        f"got {type(log_prob_fn).__name__}")


def _check_common(log_prob_fn, batch_size: int, max_len: int, device, **tokens: int):
    """Returns the device as a torch.device (or None)."""
    _check_fn(log_prob_fn)
    check_positive_int(batch_size, "batch_size")
    check_positive_int(max_len, "max_len")
    for name, token in tokens.items():
        check_positive_int(token, name, minimum=0)  # a token id: an int >= 0
    return check_device(device)


def _check_in_vocab(V: int, **tokens: int) -> None:
    """After the first call of log_prob_fn, which tells the vocabulary size V."""
    for name, token in tokens.items():
        if token >= V:
            raise ValueError(f"{name} = {token} is not a token id of log_prob_fn's vocabulary "
                             f"(it returns V = {V} log-probabilities: ids 0 .. {V - 1})")


def _check_alpha(alpha) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float):
        raise TypeError(f"alpha (length normalisation) should be a number >= 0, "
                        f"got {type(alpha).__name__} {alpha!r}")
    if not 0 <= alpha < math.inf:  # also refuses nan
        raise ValueError(f"alpha (length normalisation) should be a finite number >= 0, "
                         f"got {alpha!r}")


def _next(fn: LogProbFn, prefixes: torch.Tensor, rows: torch.Tensor,
          choose: bool = True) -> torch.Tensor:
    out = fn(prefixes, rows)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != len(prefixes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"log_prob_fn should return log-probabilities of shape "
                         f"({len(prefixes)}, V), got {shape}")
    if not out.is_floating_point():
        raise TypeError(f"log_prob_fn should return floating-point log-probabilities, "
                        f"got dtype {out.dtype}")
    # a search picks tokens by these numbers: a nan, a logit or a probability would be
    # picked silently (and summed into a "log-probability" above 0)
    if choose:
        check_not_nan(out, "the output of log_prob_fn")  # says where
    check_log_probs(out, "the output of log_prob_fn", dim=-1, allow_nan=not choose)
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
    device = _check_common(log_prob_fn, batch_size, max_len, device, bos=bos, eos=eos)
    return _generate(log_prob_fn, batch_size, bos, eos, max_len, device,
                     pick=lambda logp: logp.argmax(-1), skip_done=True)


@torch.no_grad()
def sample(log_prob_fn: LogProbFn, batch_size: int, bos: int, eos: int, max_len: int = 50,
           temperature: float = 1.0, top_k: int | None = None,
           generator: torch.Generator | None = None, device=None) -> Decoded:
    """Draw each token from softmax(log p / temperature), restricted to the ``top_k`` most
    likely tokens when ``top_k`` is given. Returned log_probs are under the *model's*
    distribution (temperature 1, no top-k), so samples of any temperature compare."""
    device = _check_common(log_prob_fn, batch_size, max_len, device, bos=bos, eos=eos)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise TypeError(f"temperature should be a number > 0, got "
                        f"{type(temperature).__name__} {temperature!r}")
    if not 0 < temperature < math.inf:  # also refuses nan
        raise ValueError(f"temperature should be a finite number > 0 (use greedy() for the "
                         f"limit 0), got {temperature!r}")
    if top_k is not None:
        check_positive_int(top_k, "top_k")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator should be None or a torch.Generator, "
                        f"got {type(generator).__name__}")

    def pick(logp):
        logits = logp / temperature  # (N, V)
        if top_k is not None and top_k < logits.shape[-1]:
            kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (N, 1)
            logits = logits.masked_fill(logits < kth, -math.inf)
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    return _generate(log_prob_fn, batch_size, bos, eos, max_len, device, pick)


def _live_next(fn, prefixes, rows, done):
    """log_prob_fn on the unfinished rows only; finished rows get 0 (their next token is
    fixed). Finished sequences would otherwise cost as much as live ones until the last
    sequence ends."""
    if not done.any():
        return _next(fn, prefixes, rows)
    live = (~done).nonzero().squeeze(1)
    out = _next(fn, prefixes[live], rows[live])  # (live, V)
    logp = out.new_zeros(len(prefixes), out.shape[1])
    logp[live] = out
    return logp


def _generate(fn, batch_size, bos, eos, max_len, device, pick,
              skip_done=False) -> Decoded:
    rows = torch.arange(batch_size, device=device)
    prefixes = torch.full((batch_size, 1), bos, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    total = torch.zeros(batch_size, device=device)
    for t in range(max_len):
        if skip_done:  # a deterministic pick: finished rows need no log-probabilities
            logp = _live_next(fn, prefixes, rows, done)  # (B, V)
        else:  # sampling draws for every row, so the random stream stays the same
            logp = _next(fn, prefixes, rows)  # (B, V)
        if t == 0:
            _check_in_vocab(logp.shape[1], bos=bos, eos=eos)
        y = pick(logp).masked_fill(done, eos)  # (B,)
        total += logp.gather(1, y[:, None]).squeeze(1).masked_fill(done, 0.0)
        prefixes = torch.cat([prefixes, y[:, None]], dim=1)
        done = done | (y == eos)
        if done.all():
            break
    return _finish(prefixes[:, 1:], total, eos, max_len)


def length_normalised(scores: torch.Tensor, lengths: torch.Tensor, alpha: float) -> torch.Tensor:
    """score / length ** alpha: alpha = 0 ranks by log-probability, alpha = 1 by the
    log-probability per token. ``lengths`` (integers >= 1) broadcast to ``scores``' shape."""
    check_tensor(scores, "scores", "float")
    check_tensor(lengths, "lengths", "int")
    try:
        fits = torch.broadcast_shapes(scores.shape, lengths.shape) == scores.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"lengths of shape {tuple(lengths.shape)} should broadcast to the "
                         f"shape of scores {tuple(scores.shape)}")
    _check_alpha(alpha)
    if lengths.numel() and int(lengths.min()) < 1:
        raise ValueError(f"lengths should be >= 1 (a length counts tokens, <eos> included), "
                         f"got {int(lengths.min())}")
    return _length_normalised(scores, lengths, alpha)


def _length_normalised(scores, lengths, alpha):
    return scores / lengths.to(scores.dtype) ** alpha


def beam_step(scores: torch.Tensor, lengths: torch.Tensor, finished: torch.Tensor,
              log_probs: torch.Tensor, eos: int, alpha: float = 0.0):
    """One step of beam search for B inputs with k beams each.

    scores (B, k) log-probabilities so far (<= 0), lengths (B, k) tokens generated so
    far, finished (B, k) beams that have produced ``eos``, log_probs (B, k, V) of the
    next token (each unfinished beam's row log-sum-exps to 0). A finished beam is
    carried over unchanged (as itself + ``eos``, log-prob 0).
    Candidates are ranked by ``length_normalised(score, length, alpha)``.
    Returns (scores, lengths, finished, parent beam, word), each (B, k).
    """
    check_tensor(scores, "scores", "float")
    dims = check_shape(scores, ("B", "k"), "scores")
    check_tensor(lengths, "lengths", "int")
    check_shape(lengths, ("B", "k"), "lengths", dims)
    check_tensor(finished, "finished", "bool")
    check_shape(finished, ("B", "k"), "finished", dims)
    check_tensor(log_probs, "log_probs", "float")
    V = check_shape(log_probs, ("B", "k", "V"), "log_probs", dims)["V"]
    check_same_dtype((scores, "scores"), (log_probs, "log_probs"))
    check_positive_int(eos, "eos", minimum=0)
    _check_in_vocab(V, eos=eos)
    _check_alpha(alpha)
    if lengths.numel() and int(lengths.min()) < 0:
        raise ValueError(f"lengths should be >= 0 (tokens generated so far), "
                         f"got {int(lengths.min())}")
    check_not_nan(scores, "scores")  # beams are ranked: a nan would be ranked silently
    check_log_probs(scores, "scores", dim=None)  # sums of log-probabilities: <= 0
    # the live beams' rows are distributions over the next token (finished ones are unused)
    check_log_probs(log_probs[~finished], "log_probs (of the unfinished beams)", dim=-1)
    return _beam_step(scores, lengths, finished, log_probs, eos, alpha)


def _beam_step(scores, lengths, finished, log_probs, eos, alpha):
    B, k, V = log_probs.shape
    carry = torch.full((V,), -math.inf, device=log_probs.device)
    carry[eos] = 0.0  # a finished beam's only continuation: itself
    log_probs = torch.where(finished[..., None], carry, log_probs)
    total = scores[..., None] + log_probs  # (B, k, V)
    new_len = lengths + (~finished).long()  # (B, k)
    ranked = _length_normalised(total, new_len[..., None].expand(-1, -1, V), alpha)
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
    device = _check_common(log_prob_fn, batch_size, max_len, device, bos=bos, eos=eos)
    check_positive_int(beam_width, "beam_width")
    _check_alpha(alpha)
    B, k = batch_size, beam_width
    rows = torch.arange(B, device=device).repeat_interleave(k)  # (B k,)
    prefixes = torch.full((B * k, 1), bos, dtype=torch.long, device=device)
    scores = torch.full((B, k), -math.inf, device=device)
    scores[:, 0] = 0.0  # one live beam at the start: the others are copies of it
    lengths = torch.zeros(B, k, dtype=torch.long, device=device)
    finished = torch.zeros(B, k, dtype=torch.bool, device=device)
    for t in range(max_len):
        # finished beams only carry themselves over: skip their log-probabilities
        logp = _live_next(log_prob_fn, prefixes, rows, finished.reshape(-1))  # (B k, V)
        if t == 0:
            _check_in_vocab(logp.shape[1], bos=bos, eos=eos)
            scores = scores.to(logp.dtype)  # 0 and -inf: the same in any dtype
        scores, lengths, finished, parent, word = _beam_step(
            scores, lengths, finished, logp.view(B, k, -1), eos, alpha)
        pick = (parent + torch.arange(B, device=device)[:, None] * k).reshape(-1)  # (B k,)
        prefixes = torch.cat([prefixes[pick], word.reshape(-1, 1)], dim=1)
        if finished.all():
            break
    best = _length_normalised(scores, lengths.clamp(min=1), alpha).argmax(-1)  # (B,)
    index = best + torch.arange(B, device=device) * k
    tokens = prefixes[index, 1:]
    return _finish(tokens, scores.gather(1, best[:, None]).squeeze(1), eos, max_len)


@torch.no_grad()
def sequence_log_probs(log_prob_fn: LogProbFn, tokens: torch.Tensor, lengths: torch.Tensor,
                       bos: int) -> torch.Tensor:
    """Log-probability of given sequences, tokens (B, T) (no ``<bos>``: it is prepended
    here, and a row that starts with it is refused), each counted over its first
    ``lengths[b]`` tokens (0 .. T) -> (B,). Teacher forcing, one step at a time."""
    _check_fn(log_prob_fn)
    check_tensor(tokens, "tokens", "int")
    dims = check_shape(tokens, ("B", "T"), "tokens")
    check_tensor(lengths, "lengths", "int")
    check_shape(lengths, ("B",), "lengths", dims)
    check_positive_int(bos, "bos", minimum=0)
    B, T = tokens.shape
    if tokens.numel() and int(tokens.min()) < 0:
        raise ValueError(f"tokens holds the token id {int(tokens.min())}; ids are >= 0")
    if B and (int(lengths.min()) < 0 or int(lengths.max()) > T):
        raise ValueError(f"lengths should lie in 0 .. T = {T} (the width of tokens), got min "
                         f"{int(lengths.min())}, max {int(lengths.max())}")
    if T and bool(((tokens[:, 0] == bos) & (lengths > 0)).any()):
        row = int(((tokens[:, 0] == bos) & (lengths > 0)).nonzero()[0])
        raise ValueError(f"tokens[{row}] starts with <bos> (id {bos}); give the tokens "
                         f"without it (tokens[:, 1:]): <bos> is prepended here")
    rows = torch.arange(B, device=tokens.device)
    prefixes = torch.cat([torch.full((B, 1), bos, dtype=torch.long, device=tokens.device),
                          tokens], dim=1)
    total = torch.zeros(B, device=tokens.device)
    for t in range(int(lengths.max()) if B else 0):
        logp = _next(log_prob_fn, prefixes[:, : t + 1], rows, choose=False)
        if t == 0:
            V = logp.shape[1]
            _check_in_vocab(V, bos=bos)
            if int(tokens.max()) >= V:
                raise ValueError(f"tokens holds the token id {int(tokens.max())}, but "
                                 f"log_prob_fn's vocabulary has V = {V} ids (0 .. {V - 1})")
        step = logp.gather(1, tokens[:, t: t + 1]).squeeze(1)
        total += torch.where(t < lengths, step, torch.zeros_like(step))
    return total


def _check_sentences(sentences, name: str = "sentences") -> list:
    """A non-empty list of sentences, each a list (or tuple) of words (strings)."""
    if isinstance(sentences, str):
        raise TypeError(f"{name} should be a list of sentences, each a list of words, not a "
                        f"string")
    try:
        sentences = list(sentences)
    except TypeError:
        raise TypeError(f"{name} should be a list of sentences, each a list of words, "
                        f"got {type(sentences).__name__}") from None
    if not sentences:
        raise ValueError(f"{name} is empty: give at least one sentence")
    for i, sentence in enumerate(sentences):
        if isinstance(sentence, str) or not isinstance(sentence, Sequence):
            fix = " (split it into words with .split())" if isinstance(sentence, str) else ""
            raise TypeError(f"{name}[{i}] should be a list of words{fix}, "
                            f"got {type(sentence).__name__}")
        for word in sentence:
            if not isinstance(word, str):
                raise TypeError(f"{name}[{i}] should hold words (strings), but holds "
                                f"{type(word).__name__} {word!r}"[:160])
    return sentences


class BigramLM:
    """The next token depends on the previous one only: add-``k`` smoothed counts.

    ``BigramLM(sentences, vocab)`` counts ``<bos> w_1 .. w_n <eos>`` transitions;
    ``log_prob_fn`` plugs it into the searches above, ``perplexity`` scores held-out text.
    """

    def __init__(self, sentences: Sequence[Sequence[str]], vocab, smoothing: float = 0.1):
        if not all(hasattr(vocab, a) for a in ("bos", "eos", "pad", "encode", "__len__")):
            raise TypeError(f"vocab should be a Vocab (attnbook.data.translation.Vocab, e.g. "
                            f"target_vocab()), got {type(vocab).__name__}")
        if isinstance(smoothing, bool) or not isinstance(smoothing, int | float):
            raise TypeError(f"smoothing should be a number > 0, got "
                            f"{type(smoothing).__name__} {smoothing!r}")
        if not 0 < smoothing < math.inf:  # also refuses nan
            raise ValueError(f"smoothing should be a finite number > 0 (unseen pairs need "
                             f"some mass), got {smoothing!r}")
        sentences = _check_sentences(sentences)
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
        """prefixes (N, t), t >= 1, ids of the vocabulary -> (N, V): the row of the last
        token. ``rows`` is ignored (a bigram model has no source)."""
        check_tensor(prefixes, "prefixes", "int")
        check_shape(prefixes, (None, None), "prefixes")
        if prefixes.shape[1] == 0:
            raise ValueError("prefixes have no tokens (shape (N, 0)): each prefix starts "
                             "with <bos>")
        V = self.log_table.shape[0]
        if prefixes.numel():
            lo, hi = torch.stack((prefixes.min(), prefixes.max())).tolist()
            if lo < 0 or hi >= V:
                raise ValueError(f"prefixes holds ids outside the vocabulary [0, {V}): "
                                 f"min {lo}, max {hi}")
        return self.log_table.to(prefixes.device)[prefixes[:, -1]]  # (N, V)

    def perplexity(self, sentences: Sequence[Sequence[str]]) -> float:
        """exp(mean negative log-probability per predicted token, ``<eos>`` included)."""
        sentences = _check_sentences(sentences)
        nll, n = 0.0, 0
        for sentence in sentences:
            ids = [self.vocab.bos, *self.vocab.encode(sentence), self.vocab.eos]
            nll -= float(sum(self.log_table[a, b] for a, b in zip(ids[:-1], ids[1:],
                                                                  strict=True)))
            n += len(ids) - 1
        return math.exp(nll / n)

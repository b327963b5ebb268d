"""A toy parallel corpus for chapter 6, generated from a small grammar, with gold alignments.

Nothing is downloaded: sentence pairs are drawn from a seeded generator.

The grammar (source = English-like, target = an invented language):

    sentence := clause (conj clause)*           ->  clause' (conj' clause')*
    clause   := NP_subj verb NP_obj              ->  NP'_subj NP'_obj verb'     (verb-final)
    NP       := det adj{0,3} noun                ->  noun' adj'{0,3} det'       (adjectives
                                                     after the noun, determiner last)
    verb     := present form | past form         ->  stem' | stem' "ta"         (a past verb
                                                     becomes two words: stem + particle)

Example: ``the old dog saw a red cat`` -> ``varo vemo no miso rulo ni mira ta``.
Every target word is aligned to exactly one source word (both ``mira`` and ``ta``
to ``saw``); every source word to at least one target word. Lengths are drawn
uniformly from ``min_len`` to ``max_len`` source tokens.
"""

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from attnbook.shapes import check_positive_int

NOUNS = {"dog": "varo", "cat": "miso", "bird": "tiki", "fish": "pesu", "horse": "hamo",
         "child": "kiri", "teacher": "lenu", "farmer": "fado", "king": "rega", "queen": "regi",
         "doctor": "doku", "student": "sena"}
ADJECTIVES = {"big": "oko", "small": "pia", "red": "rulo", "blue": "bela", "old": "vemo",
              "young": "jaku", "happy": "nari", "tired": "suto"}
# source present, source past -> target stem (the past adds the particle PAST)
VERBS = {("sees", "saw"): "mira", ("likes", "liked"): "ama", ("helps", "helped"): "taso",
         ("finds", "found"): "kena", ("calls", "called"): "yobu",
         ("follows", "followed"): "sugu", ("feeds", "fed"): "kuwa", ("meets", "met"): "aiso"}
DETERMINERS = {"the": "no", "a": "ni", "this": "ko", "that": "ano", "every": "mei",
               "some": "ara"}
CONJUNCTIONS = {"and": "to", "but": "demo", "or": "ka", "while": "nagara"}
PAST = "ta"

_NOUN, _ADJ, _DET, _CONJ = list(NOUNS), list(ADJECTIVES), list(DETERMINERS), list(CONJUNCTIONS)
_VERB = list(VERBS.items())

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)

MIN_CLAUSE, MAX_ADJ = 5, 3  # det noun verb det noun; at most 3 adjectives per NP


@dataclass(frozen=True)
class Pair:
    """One sentence pair. ``alignment[t]`` is the source position of target word ``t``."""

    src: tuple[str, ...]
    tgt: tuple[str, ...]
    alignment: tuple[int, ...]


def _noun_phrase(rng: random.Random, n_adj: int, start: int):
    """Source NP (det adj* noun) and its target (noun adj* det) with alignments."""
    det = rng.choice(_DET)
    adjs = [rng.choice(_ADJ) for _ in range(n_adj)]
    noun = rng.choice(_NOUN)
    src = [det, *adjs, noun]
    tgt = [NOUNS[noun], *(ADJECTIVES[a] for a in adjs), DETERMINERS[det]]
    align = [start + 1 + n_adj, *(start + 1 + i for i in range(n_adj)), start]
    return src, tgt, align


def _clause(rng: random.Random, n_adj_subj: int, n_adj_obj: int, start: int):
    """Source SVO clause and its verb-final target, with alignments."""
    s_src, s_tgt, s_al = _noun_phrase(rng, n_adj_subj, start)
    verb_pos = start + len(s_src)
    forms, stem = rng.choice(_VERB)
    past = rng.random() < 0.5
    o_src, o_tgt, o_al = _noun_phrase(rng, n_adj_obj, verb_pos + 1)
    v_tgt, v_al = ([stem, PAST], [verb_pos] * 2) if past else ([stem], [verb_pos])
    return s_src + [forms[past]] + o_src, s_tgt + o_tgt + v_tgt, s_al + o_al + v_al


def _split_adjectives(rng: random.Random, extra: int, slots: int) -> list[int]:
    """Spread ``extra`` adjectives over ``slots`` noun phrases, at most MAX_ADJ each."""
    counts = [0] * slots
    for _ in range(extra):
        free = [i for i, c in enumerate(counts) if c < MAX_ADJ]
        counts[rng.choice(free)] += 1
    return counts


def sample_pair(rng: random.Random, length: int) -> Pair:
    """A pair whose source has exactly ``length`` tokens (5 <= length)."""
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng should be a random.Random, e.g. random.Random(0), "
                        f"got {type(rng).__name__}")
    check_positive_int(length, "length")
    # k clauses take 6k - 1 tokens without adjectives, plus up to MAX_ADJ per noun phrase
    options = [k for k in range(1, length + 1)
               if 6 * k - 1 <= length <= 6 * k - 1 + 2 * k * MAX_ADJ]
    if not options:
        raise ValueError(f"length should be >= {MIN_CLAUSE}: no sentence of the grammar has "
                         f"{length} source tokens")
    k = rng.choice(options)
    adj = _split_adjectives(rng, length - (6 * k - 1), 2 * k)
    src, tgt, align = [], [], []
    for i in range(k):
        if i:
            conj = rng.choice(_CONJ)
            align.append(len(src))
            src.append(conj)
            tgt.append(CONJUNCTIONS[conj])
        c_src, c_tgt, c_al = _clause(rng, adj[2 * i], adj[2 * i + 1], len(src))
        src += c_src
        tgt += c_tgt
        align += c_al
    return Pair(tuple(src), tuple(tgt), tuple(align))


def generate_corpus(n: int, min_len: int = MIN_CLAUSE, max_len: int = 30,
                    seed: int = 0) -> list[Pair]:
    """``n`` pairs with source lengths uniform in [min_len, max_len]; same seed, same corpus."""
    check_positive_int(n, "n", minimum=0)
    check_positive_int(seed, "seed", minimum=0)
    check_positive_int(min_len, "min_len")
    check_positive_int(max_len, "max_len")
    if min_len < MIN_CLAUSE or max_len < min_len:
        raise ValueError(f"need {MIN_CLAUSE} <= min_len <= max_len, got {min_len}, {max_len}")
    rng = random.Random(seed)
    return [sample_pair(rng, rng.randint(min_len, max_len)) for _ in range(n)]


@dataclass
class Corpus:
    """Train, validation and test pairs (no test source sentence appears in train)."""

    train: list[Pair]
    val: list[Pair]
    test: list[Pair]


def make_corpus(n_train: int = 20000, n_val: int = 500, n_test: int = 1000,
                min_len: int = MIN_CLAUSE, max_len: int = 30, seed: int = 0) -> Corpus:
    """Generate the three splits from one seed; val/test sentences seen in train are redrawn.

    Raises ``ValueError`` when the grammar runs out of new sentences of these lengths
    (instead of searching forever). ``n_train`` >= 1: a training set of no sentences
    would train nothing; the held-out splits may be empty."""
    check_positive_int(n_train, "n_train")
    for value, name in ((n_val, "n_val"), (n_test, "n_test"), (seed, "seed")):
        check_positive_int(value, name, minimum=0)
    train = generate_corpus(n_train, min_len, max_len, seed)
    seen = {p.src for p in train}
    rng = random.Random(seed + 1)
    held_out = []
    misses = 0
    while len(held_out) < n_val + n_test:
        if misses > 1000 + 10 * (n_val + n_test):
            raise ValueError(f"could not find {n_val + n_test} held-out sentences of length "
                             f"{min_len} .. {max_len} that are not in train; allow longer "
                             f"sentences (max_len) or ask for fewer")
        misses += 1
        pair = sample_pair(rng, rng.randint(min_len, max_len))
        if pair.src not in seen:
            seen.add(pair.src)
            held_out.append(pair)
    return Corpus(train, held_out[:n_val], held_out[n_val:])


class Vocab:
    """Token <-> index, with ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3."""

    def __init__(self, tokens: Sequence[str]):
        _check_tokens(tokens, "tokens")
        words = sorted(set(tokens) - set(SPECIALS))
        self.itos = list(SPECIALS) + words
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.pad, self.bos, self.eos, self.unk = (self.stoi[t] for t in SPECIALS)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        _check_tokens(tokens, "tokens")
        return [self.stoi.get(t, self.unk) for t in tokens]

    def decode(self, ids: Sequence[int], strip: bool = True) -> list[str]:
        """Indices -> tokens; with ``strip``, stop at ``<eos>`` and drop ``<pad>``/``<bos>``.

        ``ids``: a list of ints or a 1-D integer tensor, each in ``0 .. len(vocab) - 1``."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1 or ids.is_floating_point():
                raise ValueError(f"ids should be one sentence: a 1-D integer tensor, got "
                                 f"shape {tuple(ids.shape)}, dtype {ids.dtype}")
            ids = ids.tolist()
        if isinstance(ids, str) or not hasattr(ids, "__iter__"):
            raise TypeError(f"ids should be a list of token ids, got {type(ids).__name__}")
        out = []
        for i in ids:
            check_positive_int(i, "each id in ids", minimum=0)
            if i >= len(self.itos):
                raise ValueError(f"ids holds the token id {i}, but this vocabulary has "
                                 f"{len(self.itos)} ids (0 .. {len(self.itos) - 1})")
            i = int(i)
            if strip and i == self.eos:
                break
            if strip and i in (self.pad, self.bos):
                continue
            out.append(self.itos[i])
        return out


def _check_pairs(pairs) -> None:
    if isinstance(pairs, str) or not isinstance(pairs, Sequence):
        raise TypeError(f"pairs should be a list of Pair (from generate_corpus), "
                        f"got {type(pairs).__name__}")
    if len(pairs) == 0:
        raise ValueError("pairs is empty: a batch needs at least one pair")
    for p in pairs:
        if not isinstance(p, Pair):
            raise TypeError(f"pairs should hold Pair objects, got {type(p).__name__}")


def _check_tokens(tokens, name: str) -> None:
    if isinstance(tokens, str):
        raise TypeError(f"{name} should be a list of tokens, not a string (it would be read "
                        f"letter by letter): use {name}.split()")
    if not hasattr(tokens, "__iter__"):
        raise TypeError(f"{name} should be a list of tokens, got {type(tokens).__name__}")


def source_vocab() -> Vocab:
    """Every source word of the grammar (so nothing in a test sentence is unknown)."""
    verbs = [form for forms in VERBS for form in forms]
    return Vocab([*NOUNS, *ADJECTIVES, *verbs, *DETERMINERS, *CONJUNCTIONS])


def target_vocab() -> Vocab:
    return Vocab([*NOUNS.values(), *ADJECTIVES.values(), *VERBS.values(),
                  *DETERMINERS.values(), *CONJUNCTIONS.values(), PAST])


@dataclass
class Batch:
    """Padded tensors for a batch of B pairs.

    src (B, S), src_len (B,); tgt_in (B, T) = <bos> y_1 .. y_n, tgt_out (B, T) = y_1 .. y_n <eos>,
    tgt_len (B,) = n + 1; align (B, T) = source position of each target word, -1 at <eos>/pad.
    """

    src: torch.Tensor
    src_len: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    tgt_len: torch.Tensor
    align: torch.Tensor

    def to(self, device) -> "Batch":
        return Batch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return self.src.shape[0]


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def make_batch(pairs: Sequence[Pair], src_vocab: Vocab, tgt_vocab: Vocab) -> Batch:
    """Encode and pad ``pairs`` into one ``Batch`` (padding with ``<pad>``, lengths kept).

    A vocabulary that knows none of its side's words (every one would be ``<unk>``: the
    two vocabularies swapped?) is refused."""
    _check_pairs(pairs)
    for vocab, name in ((src_vocab, "src_vocab"), (tgt_vocab, "tgt_vocab")):
        if not isinstance(vocab, Vocab):
            raise TypeError(f"{name} should be a Vocab, got {type(vocab).__name__}")
    src = [src_vocab.encode(p.src) for p in pairs]
    tgt = [tgt_vocab.encode(p.tgt) for p in pairs]
    for rows, vocab, name, side in ((src, src_vocab, "src_vocab", "source"),
                                    (tgt, tgt_vocab, "tgt_vocab", "target")):
        if not any(i != vocab.unk for row in rows for i in row):
            raise ValueError(f"{name} knows none of the {side} words of pairs (every one "
                             f"would be <unk>): are src_vocab and tgt_vocab swapped? "
                             f"make_batch(pairs, source_vocab(), target_vocab())")
    return Batch(
        src=_pad(src, src_vocab.pad),
        src_len=torch.tensor([len(s) for s in src]),
        tgt_in=_pad([[tgt_vocab.bos] + t for t in tgt], tgt_vocab.pad),
        tgt_out=_pad([t + [tgt_vocab.eos] for t in tgt], tgt_vocab.pad),
        tgt_len=torch.tensor([len(t) + 1 for t in tgt]),
        align=_pad([list(p.alignment) + [-1] for p in pairs], -1),
    )


def bucketed_batches(pairs: Sequence[Pair], batch_size: int, src_vocab: Vocab,
                     tgt_vocab: Vocab, seed: int = 0) -> Iterator[Batch]:
    """Endless batches of pairs with similar source length (little padding), in random order.

    Each epoch: shuffle, sort by source length, cut into batches, shuffle the batches.
    ``batch_size`` must be >= 1 and ``pairs`` non-empty (checked at once, on the call).
    """
    _check_pairs(pairs)
    check_positive_int(batch_size, "batch_size")
    return _bucketed(pairs, batch_size, src_vocab, tgt_vocab, seed)


def _bucketed(pairs, batch_size, src_vocab, tgt_vocab, seed):
    rng = random.Random(seed)
    while True:
        order = list(range(len(pairs)))
        rng.shuffle(order)
        order.sort(key=lambda i: len(pairs[i].src))
        chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            yield make_batch([pairs[i] for i in chunk], src_vocab, tgt_vocab)

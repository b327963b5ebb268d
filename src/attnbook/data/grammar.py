"""A recogniser for the grammar of chapter 6's corpus, and its monolingual sentences.

Chapter 9 trains a language model on one side of ``attnbook.data.translation``'s corpus
and asks how many of the sentences it samples the grammar would produce. The grammar is
regular, so a left-to-right scan decides it:

    source:  sentence := clause (conj clause)*,  clause := NP verb NP,
             NP := det adj{0,3} noun,            verb := present or past form
    target:  sentence := clause (conj clause)*,  clause := NP NP verb,
             NP := noun adj{0,3} det,            verb := stem | stem "ta"

``grammar_error`` says where and why a sentence leaves the grammar (``None`` when it is a
sentence); ``is_grammatical`` is its yes/no. Lengths are not limited (the generator
keeps sources within 5-30 words; the grammar itself has no bound). A sentence is a list
(or tuple) of words, each a string; anything else is refused with a ``TypeError``.
"""

from collections.abc import Sequence

from attnbook.data.translation import (
    ADJECTIVES,
    CONJUNCTIONS,
    DETERMINERS,
    MAX_ADJ,
    NOUNS,
    PAST,
    VERBS,
    Pair,
    make_corpus,
)

SIDES = ("source", "target")

# word classes of each side
_CLASSES = {
    "source": {"det": set(DETERMINERS), "adj": set(ADJECTIVES), "noun": set(NOUNS),
               "verb": {form for forms in VERBS for form in forms},
               "conj": set(CONJUNCTIONS)},
    "target": {"det": set(DETERMINERS.values()), "adj": set(ADJECTIVES.values()),
               "noun": set(NOUNS.values()), "verb": set(VERBS.values()),
               "conj": set(CONJUNCTIONS.values()), "past": {PAST}},
}

# the order of the word classes in one clause (adjectives handled apart: 0 to MAX_ADJ)
_CLAUSE = {"source": ["det", "adj*", "noun", "verb", "det", "adj*", "noun"],
           "target": ["noun", "adj*", "det", "noun", "adj*", "det", "verb", "past?"]}


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"side should be 'source' or 'target', got {side!r}")


def word_class(word: str, side: str = "target") -> str | None:
    """The class of ``word`` on ``side`` ("det", "adj", "noun", "verb", "conj", "past"),
    or ``None`` for a word the grammar does not know."""
    if not isinstance(word, str):
        raise TypeError(f"word should be a string (one word), got {type(word).__name__} "
                        f"{word!r}"[:160])
    _check_side(side)
    return _word_class(word, side)


def _word_class(word: str, side: str) -> str | None:
    for name, words in _CLASSES[side].items():
        if word in words:
            return name
    return None


def _check_words(tokens, name: str = "tokens") -> list[str]:
    """One sentence: a list (or tuple) of words, each a string."""
    if isinstance(tokens, str):
        raise TypeError(f"{name} should be a sequence of words, not a string: use .split()")
    if not isinstance(tokens, Sequence):
        raise TypeError(f"{name} should be a sequence of words (a list of strings), "
                        f"got {type(tokens).__name__}")
    words = list(tokens)
    for i, w in enumerate(words):
        if not isinstance(w, str):
            raise TypeError(f"{name}[{i}] should be a word (a string), got "
                            f"{type(w).__name__} {w!r}"[:160])
    return words


def _expected(slot: str) -> str:
    return {"adj*": "an adjective", "past?": "the past particle"}.get(slot, f"a {slot}")


def grammar_error(tokens: Sequence[str], side: str = "target") -> str | None:
    """``None`` if ``tokens`` is a sentence of the grammar on ``side``, else why not.

    The reason names the first position where the sentence leaves the grammar, e.g.
    ``"word 3 'mira': expected a det, got a verb"``.
    """
    _check_side(side)
    words = _check_words(tokens)
    if not words:
        return "the sentence is empty"
    classes = [_word_class(w, side) for w in words]
    pattern, i, slot = _CLAUSE[side], 0, 0
    n_adj = 0
    while i < len(words):
        if slot == len(pattern):  # a clause is complete: a conjunction starts the next
            if classes[i] != "conj":
                return f"word {i} {words[i]!r}: expected a conj or the end, got {classes[i]}"
            i, slot = i + 1, 0
            if i == len(words):
                return "the sentence ends with a conjunction"
            continue
        want = pattern[slot]
        if want == "adj*":
            if classes[i] == "adj":
                n_adj += 1
                if n_adj > MAX_ADJ:
                    return f"word {i} {words[i]!r}: more than {MAX_ADJ} adjectives"
                i += 1
            else:
                slot, n_adj = slot + 1, 0
            continue
        if want == "past?":
            slot += 1
            i += classes[i] == "past"
            continue
        if classes[i] != want:
            got = "an unknown word" if classes[i] is None else f"a {classes[i]}"
            return f"word {i} {words[i]!r}: expected {_expected(want)}, got {got}"
        i, slot = i + 1, slot + 1
    rest = [s for s in pattern[slot:] if s not in ("adj*", "past?")]
    if rest:
        return f"the sentence stops inside a clause (still missing {_expected(rest[0])})"
    return None


def is_grammatical(tokens: Sequence[str], side: str = "target") -> bool:
    """True if the grammar of ``side`` ("source" or "target") generates ``tokens``."""
    return grammar_error(tokens, side) is None


def sentences(pairs: Sequence[Pair], side: str = "target") -> list[tuple[str, ...]]:
    """One side of a list of pairs: the monolingual sentences."""
    _check_side(side)
    if isinstance(pairs, str) or not isinstance(pairs, Sequence):
        raise TypeError(f"pairs should be a list of Pair (from generate_corpus or "
                        f"make_corpus), got {type(pairs).__name__}")
    for i, p in enumerate(pairs):
        if not isinstance(p, Pair):
            raise TypeError(f"pairs[{i}] should be a Pair (with .src and .tgt), "
                            f"got {type(p).__name__}")
    return [p.src if side == "source" else p.tgt for p in pairs]


def make_monolingual(n_train: int = 20000, n_val: int = 500, n_test: int = 1000,
                     side: str = "target", max_len: int = 30, seed: int = 0):
    """Train, validation and test sentences of one side of ``make_corpus(...)``, with the
    same split (held-out sentences never occur in train). Returns three lists of tuples;
    the training list is never empty (``n_train`` >= 1)."""
    corpus = make_corpus(n_train=n_train, n_val=n_val, n_test=n_test, max_len=max_len,
                         seed=seed)
    return (sentences(corpus.train, side), sentences(corpus.val, side),
            sentences(corpus.test, side))

"""The grammar recogniser accepts every generated sentence and rejects perturbed ones."""

import random

import pytest

from attnbook.data.grammar import (
    grammar_error,
    is_grammatical,
    make_monolingual,
    sentences,
    word_class,
)
from attnbook.data.translation import PAST, generate_corpus


@pytest.fixture(scope="module")
def pairs():
    return generate_corpus(2000, seed=5)


@pytest.mark.parametrize("side", ["source", "target"])
def test_every_generated_sentence_is_grammatical(pairs, side):
    for sentence in sentences(pairs, side):
        assert grammar_error(sentence, side) is None, sentence


def test_the_sides_are_different_languages(pairs):
    # an SVO source sentence is not a target sentence and vice versa
    for p in pairs[:200]:
        assert not is_grammatical(p.src, "target")
        assert not is_grammatical(p.tgt, "source")


def _perturbations(words, rng):
    """Edits of a sentence that leave the grammar (on either side)."""
    n = len(words)
    i = rng.randrange(n - 1)
    yield "dropped the first word", words[1:]
    if words[-1] != PAST:  # without its particle, a past verb is a present one
        yield "dropped the last word", words[:-1]
    yield "repeated the sentence without a conjunction", words + words
    yield "reversed", words[::-1]
    yield "an unknown word", words[:i] + ["zebra"] + words[i + 1:]
    yield "a conjunction at the end", words + ["and" if "the" in words or "a" in words
                                               else "to"]


@pytest.mark.parametrize("side", ["source", "target"])
def test_perturbed_sentences_are_rejected(pairs, side):
    rng = random.Random(0)
    for sentence in sentences(pairs[:300], side):
        for name, edited in _perturbations(list(sentence), rng):
            if edited == edited[::-1] and name == "reversed":
                continue
            assert not is_grammatical(edited, side), (name, sentence, edited)


def test_swapped_neighbours_of_different_classes_are_rejected(pairs):
    for side in ["source", "target"]:
        for sentence in sentences(pairs[:300], side):
            words = list(sentence)
            for i in range(len(words) - 1):
                a, b = word_class(words[i], side), word_class(words[i + 1], side)
                if a == b:
                    continue  # two adjectives may swap places
                swapped = words[:i] + [words[i + 1], words[i]] + words[i + 2:]
                assert not is_grammatical(swapped, side), (side, sentence, i)


def test_wrong_verb_forms_and_particles():
    src = "the old dog saw a red cat".split()
    tgt = "varo vemo no miso rulo ni mira ta".split()
    assert is_grammatical(src, "source") and is_grammatical(tgt, "target")
    assert not is_grammatical("the old dog see a red cat".split(), "source")  # no such form
    assert not is_grammatical(tgt + [PAST], "target")  # the particle twice
    assert not is_grammatical("varo vemo no miso rulo ni ta mira".split(), "target")
    assert is_grammatical(tgt[:-1], "target")  # the present tense: no particle


def test_at_most_three_adjectives():
    assert is_grammatical("the big old red dog sees a cat".split(), "source")
    error = grammar_error("the big old red tired dog sees a cat".split(), "source")
    assert error is not None and "more than 3 adjectives" in error


def test_reasons_name_the_position():
    assert grammar_error("varo no mira".split(), "target") == \
        "word 2 'mira': expected a noun, got a verb"
    assert "stops inside a clause" in grammar_error("varo no miso".split(), "target")
    assert grammar_error([], "target") == "the sentence is empty"
    assert "ends with a conjunction" in grammar_error(
        "varo no miso ni mira to".split(), "target")


def test_bad_arguments():
    with pytest.raises(ValueError, match="side"):
        is_grammatical(["varo"], "english")
    with pytest.raises(TypeError, match="split"):
        is_grammatical("varo no miso ni mira", "target")
    with pytest.raises(TypeError, match="tokens should be a sequence of words"):
        grammar_error(None)
    with pytest.raises(TypeError, match="tokens should be a sequence of words"):
        is_grammatical(3)
    with pytest.raises(TypeError, match=r"tokens\[1\] should be a word"):
        is_grammatical(["varo", 3, "no"])
    with pytest.raises(TypeError, match="word should be a string"):
        word_class(3)  # not a silent None ("a word the grammar does not know")
    with pytest.raises(TypeError, match="pairs should be a list of Pair"):
        sentences("varo no miso")
    with pytest.raises(TypeError, match=r"pairs\[0\] should be a Pair"):
        sentences([("the dog", "varo no")])


def test_monolingual_splits_are_disjoint_and_from_the_corpus():
    train, val, test = make_monolingual(n_train=500, n_val=50, n_test=100, seed=1)
    assert (len(train), len(val), len(test)) == (500, 50, 100)
    assert not set(test) & set(train) and not set(val) & set(train)
    assert all(is_grammatical(s, "target") for s in train + val + test)
    src_train, _, _ = make_monolingual(n_train=500, n_val=50, n_test=100, side="source",
                                       seed=1)
    assert all(is_grammatical(s, "source") for s in src_train)

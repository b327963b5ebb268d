"""The toy translation corpus of chapter 6: the grammar's promises, checked."""

import pytest
import torch

from attnbook.data.translation import (
    ADJECTIVES,
    CONJUNCTIONS,
    DETERMINERS,
    NOUNS,
    PAST,
    VERBS,
    bucketed_batches,
    generate_corpus,
    make_batch,
    make_corpus,
    source_vocab,
    target_vocab,
)

SRC_VERBS = {form: stem for forms, stem in VERBS.items() for form in forms}
PAST_FORMS = {forms[1] for forms in VERBS}
TRANSLATE = {**NOUNS, **ADJECTIVES, **DETERMINERS, **CONJUNCTIONS, **SRC_VERBS}


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(2000, seed=3)


def test_same_seed_same_corpus_and_other_seed_differs():
    assert generate_corpus(50, seed=1) == generate_corpus(50, seed=1)
    assert generate_corpus(50, seed=1) != generate_corpus(50, seed=2)


def test_lengths_cover_the_range(corpus):
    lengths = {len(p.src) for p in corpus}
    assert lengths == set(range(5, 31))


def test_every_target_word_is_aligned_to_its_translation(corpus):
    for p in corpus:
        assert len(p.alignment) == len(p.tgt)
        for t, (word, s) in enumerate(zip(p.tgt, p.alignment, strict=True)):
            assert 0 <= s < len(p.src)
            source = p.src[s]
            if word == PAST:  # the particle belongs to the past-tense verb just before it
                assert source in PAST_FORMS and p.alignment[t - 1] == s
            else:
                assert TRANSLATE[source] == word
        assert set(p.alignment) == set(range(len(p.src))), "every source word is translated"


def test_past_tense_gives_two_target_words(corpus):
    for p in corpus:
        n_past = sum(w in PAST_FORMS for w in p.src)
        assert len(p.tgt) == len(p.src) + n_past
        assert p.tgt.count(PAST) == n_past


def _clauses(tokens, conjunctions):
    clause, out = [], []
    for w in tokens:
        if w in conjunctions:
            out.append(clause)
            clause = []
        else:
            clause.append(w)
    return out + [clause]


def test_reordering_rules(corpus):
    stems = set(VERBS.values())
    for p in corpus:
        for clause in _clauses(p.tgt, set(CONJUNCTIONS.values())):
            # verb-final: the verb (and its particle) close the clause, nothing before is a verb
            end = clause[-2] if clause[-1] == PAST else clause[-1]
            assert end in stems and not stems & set(clause[:-2])
            # noun phrases: noun first, adjectives after it, determiner last
            i = 0
            for _ in range(2):
                assert clause[i] in NOUNS.values()
                i += 1
                while clause[i] in ADJECTIVES.values():
                    i += 1
                assert clause[i] in DETERMINERS.values()
                i += 1
        for s_clause in _clauses(p.src, set(CONJUNCTIONS)):  # the source is SVO
            verbs = [i for i, w in enumerate(s_clause) if w in SRC_VERBS]
            assert len(verbs) == 1 and s_clause[verbs[0] - 1] in NOUNS
            assert s_clause[0] in DETERMINERS and s_clause[-1] in NOUNS


def test_splits_are_disjoint_and_vocab_covers_everything():
    c = make_corpus(n_train=500, n_val=50, n_test=100, seed=0)
    train = {p.src for p in c.train}
    assert not train & {p.src for p in c.test + c.val}
    sv, tv = source_vocab(), target_vocab()
    assert (sv.pad, sv.bos, sv.eos, sv.unk) == (0, 1, 2, 3) == (tv.pad, tv.bos, tv.eos, tv.unk)
    for p in c.test:
        assert sv.unk not in sv.encode(p.src) and tv.unk not in tv.encode(p.tgt)
        assert tv.decode(tv.encode(p.tgt) + [tv.eos, tv.pad]) == list(p.tgt)
    assert sv.encode(["zebra"]) == [sv.unk]


def test_batch_padding_and_lengths():
    pairs = generate_corpus(5, seed=0)
    sv, tv = source_vocab(), target_vocab()
    b = make_batch(pairs, sv, tv)
    assert b.src.shape == (5, max(len(p.src) for p in pairs))
    assert b.tgt_in.shape == b.tgt_out.shape == b.align.shape
    for i, p in enumerate(pairs):
        n, m = len(p.src), len(p.tgt)
        assert b.src_len[i] == n and b.tgt_len[i] == m + 1
        assert (b.src[i, n:] == sv.pad).all() and (b.src[i, :n] != sv.pad).all()
        assert b.tgt_in[i, 0] == tv.bos and b.tgt_out[i, m] == tv.eos
        assert torch.equal(b.tgt_in[i, 1:m + 1], b.tgt_out[i, :m])
        assert b.align[i, :m].tolist() == list(p.alignment) and (b.align[i, m:] == -1).all()


def test_bucketed_batches_group_similar_lengths():
    pairs = generate_corpus(512, seed=0)
    batches = bucketed_batches(pairs, 64, source_vocab(), target_vocab(), seed=0)
    spreads = [int(b.src_len.max() - b.src_len.min()) for b in (next(batches) for _ in range(8))]
    assert max(spreads) <= 5

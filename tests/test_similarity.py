"""attnbook.similarity and the toy embeddings of chapter 1."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from attnbook.data.embeddings import FEATURES, toy_word_embeddings
from attnbook.similarity import (
    cosine_similarity,
    nearest_neighbours,
    pairwise_cosine,
    score_matrix,
)


def test_cosine_matches_pytorch_and_handles_zero_vectors():
    a, b = torch.randn(4, 6), torch.randn(4, 6)
    assert_close(cosine_similarity(a, b), F.cosine_similarity(a, b, dim=-1))
    assert cosine_similarity(torch.zeros(3), torch.ones(3)) == 0


def test_score_matrix_equals_a_loop_and_has_batch_dims():
    Q, K = torch.randn(2, 3, 5), torch.randn(2, 4, 5)
    loop = torch.tensor([[[float(Q[b, t] @ K[b, s]) for s in range(4)] for t in range(3)]
                         for b in range(2)])
    assert_close(score_matrix(Q, K), loop)
    assert_close(pairwise_cosine(Q, K)[1, 2, 3], F.cosine_similarity(Q[1, 2], K[1, 3], dim=0))


@pytest.mark.parametrize("q, k, message", [
    (torch.randn(3, 5), torch.randn(4, 6), r"keys should have shape \(S, d\)"),
    (torch.randn(2, 3, 5), torch.randn(3, 4, 5), r"keys should have shape"),
    (torch.randn(3, 5), torch.randint(0, 2, (4, 5)), "floating-point"),
])
def test_score_matrix_rejects_bad_input(q, k, message):
    with pytest.raises((ValueError, TypeError), match=message):
        score_matrix(q, k)


def test_toy_embeddings_are_deterministic_and_meaningful():
    words, E = toy_word_embeddings()
    assert E.shape == (16, len(FEATURES) + 4)
    assert torch.equal(E, toy_word_embeddings()[1])
    assert not torch.equal(E, toy_word_embeddings(seed=1)[1])
    idx = {w: i for i, w in enumerate(words)}
    for word, friend in [("cat", "dog"), ("car", "bus"), ("apple", "bread"), ("queen", "princess")]:
        top = nearest_neighbours(E[idx[word]], E, k=1, exclude=idx[word])
        assert words[int(top)] == friend
    analogy = E[idx["king"]] - E[idx["man"]] + E[idx["woman"]]
    assert words[int(nearest_neighbours(analogy, E, k=1))] == "queen"


def test_nearest_neighbours_checks_its_input():
    with pytest.raises(ValueError, match="query should have shape"):
        nearest_neighbours(torch.randn(3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="k should be between"):
        nearest_neighbours(torch.randn(4), torch.randn(5, 4), k=5, exclude=0)

"""Chapter 1's checkers pass the reference answers and name the classic mistakes."""

import pytest
import torch

from attnbook.exercises import ExerciseError
from attnbook.exercises.ch01 import (
    check_batched_scores,
    check_cosine_similarity,
    check_nearest_neighbour,
    check_score_matrix,
)


def test_cosine_similarity():
    assert check_cosine_similarity(lambda a, b: torch.dot(a, b) / (a.norm() * b.norm()))
    wrong = {
        "plain dot product": lambda a, b: torch.dot(a, b),
        "squared norms": lambda a, b: torch.dot(a, b) / ((a**2).sum() * (b**2).sum()),
        "only one norm": lambda a, b: torch.dot(a, b) / a.norm(),
        "the angle": lambda a, b: torch.arccos(torch.dot(a, b) / (a.norm() * b.norm())),
    }
    for name, fn in wrong.items():
        with pytest.raises(ExerciseError, match=name):
            check_cosine_similarity(fn)


def test_score_matrix():
    assert check_score_matrix(lambda Q, K: torch.einsum("td,sd->ts", Q, K))
    with pytest.raises(ExerciseError, match="keys × queries"):
        check_score_matrix(lambda Q, K: K @ Q.T)
    with pytest.raises(ExerciseError, match="cosine instead of dot"):
        check_score_matrix(lambda Q, K: torch.nn.functional.normalize(Q, dim=1)
                           @ torch.nn.functional.normalize(K, dim=1).T)
    with pytest.raises(ExerciseError, match="shape"):
        check_score_matrix(lambda Q, K: (Q * K[: len(Q)]).sum(-1))


def test_batched_scores():
    assert check_batched_scores(lambda Q, K: torch.bmm(Q, K.transpose(-2, -1)))
    with pytest.raises(ExerciseError, match="keys × queries"):
        check_batched_scores(lambda Q, K: K @ Q.transpose(1, 2))
    with pytest.raises(ExerciseError, match="mixed the batch elements"):
        check_batched_scores(lambda Q, K: torch.einsum("btd,csd->bts", Q, K))
    with pytest.raises(ExerciseError, match="only the first batch element"):
        check_batched_scores(lambda Q, K: Q[0] @ K[0].T)


def test_nearest_neighbour():
    def right(q, table):
        return torch.nn.functional.cosine_similarity(table, q[None], dim=1).argmax()

    assert check_nearest_neighbour(right)
    with pytest.raises(ExerciseError, match="dot product instead of cosine"):
        check_nearest_neighbour(lambda q, table: (table @ q).argmax())
    with pytest.raises(ExerciseError, match="argmin"):
        check_nearest_neighbour(lambda q, table: ((table @ q) / table.norm(dim=1)).argmin())
    with pytest.raises(ExerciseError, match="Euclidean"):
        check_nearest_neighbour(lambda q, table: (table - q).norm(dim=1).argmin())

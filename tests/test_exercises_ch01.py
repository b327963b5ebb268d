"""Chapter 1's checkers pass right answers and name the classic mistakes."""

import pytest
import torch
import torch.nn.functional as F

from attnbook.exercises import ExerciseError
from attnbook.exercises.ch01 import (
    check_bilinear_scores,
    check_safe_cosine,
    check_top_k_keys,
)


def good_cosine(Q, K):
    qn, kn = Q.norm(dim=1, keepdim=True), K.norm(dim=1, keepdim=True)  # (T, 1), (S, 1)
    Qu = torch.where(qn > 0, Q / torch.where(qn > 0, qn, 1.0), 0.0)
    Ku = torch.where(kn > 0, K / torch.where(kn > 0, kn, 1.0), 0.0)
    return Qu @ Ku.T


def good_top_k(Q, K, k):
    scores = torch.einsum("btd,bsd->bts", Q, K)
    return torch.sort(scores, dim=-1, descending=True, stable=True).indices[..., :k]


def test_safe_cosine(capsys):
    assert check_safe_cosine(good_cosine)
    assert "✓" in capsys.readouterr().out
    wrong = {
        "0 / 0 for a zero vector":
            lambda Q, K: (Q @ K.T) / (Q.norm(dim=1)[:, None] * K.norm(dim=1)[None, :]),
        "added a small eps":
            lambda Q, K: (Q / (Q.norm(dim=1, keepdim=True) + 1e-8))
            @ (K / (K.norm(dim=1, keepdim=True) + 1e-8)).T,
        "returned dot products": lambda Q, K: Q @ K.T,
        "zero vector cosine 1":
            lambda Q, K: torch.nan_to_num((Q @ K.T) / (
                Q.norm(dim=1)[:, None] * K.norm(dim=1)[None, :]), nan=1.0),
        "wrong axis": lambda Q, K: torch.nan_to_num(Q / Q.norm(dim=0))
        @ torch.nan_to_num(K / K.norm(dim=0)).T,
    }
    for name, fn in wrong.items():
        with pytest.raises(ExerciseError, match=name):
            check_safe_cosine(fn)


def test_safe_cosine_refuses_the_eps_clamp_of_f_cosine_similarity():
    with pytest.raises(ExerciseError, match="eps"):
        check_safe_cosine(lambda Q, K: F.cosine_similarity(Q[:, None], K[None], dim=-1))


def test_top_k_keys():
    assert check_top_k_keys(good_top_k)
    wrong = {
        "lowest scores": lambda Q, K, k: torch.sort(Q @ K.mT, dim=-1).indices[..., :k],
        "cosine similarity instead":
            lambda Q, K, k: good_top_k(F.normalize(Q, dim=-1), F.normalize(K, dim=-1), k),
        "ties not broken": lambda Q, K, k: (K.shape[1] - 1 - torch.sort(
            (Q @ K.mT).flip(-1), dim=-1, descending=True, stable=True).indices)[..., :k],
        "mixed the batch": lambda Q, K, k: torch.sort(
            torch.einsum("btd,csd->bts", Q, K), dim=-1, descending=True,
            stable=True).indices[..., :k],
    }
    for name, fn in wrong.items():
        with pytest.raises(ExerciseError, match=name):
            check_top_k_keys(fn)
    with pytest.raises(ExerciseError, match="k=7 > S=3"):  # torch.topk refuses k > S
        check_top_k_keys(lambda Q, K, k: good_top_k(Q, K, k) if k <= K.shape[1]
                         else torch.topk(Q @ K.mT, k, dim=-1).indices)


def test_bilinear_scores():
    assert check_bilinear_scores(lambda Q, Kc, W: torch.einsum("btq,qk,bks->bts", Q, W, Kc))
    wrong = {
        "used W transposed": lambda Q, Kc, W: Q @ W.T @ Kc,
        "transposed the stored keys again": lambda Q, Kc, W: Q @ W @ Kc.transpose(1, 2),
        "left out W": lambda Q, Kc, W: torch.bmm(Q, Kc),
    }
    for name, fn in wrong.items():
        with pytest.raises(ExerciseError, match=name):
            check_bilinear_scores(fn)
    with pytest.raises(ExerciseError, match="transposed"):
        check_bilinear_scores(lambda Q, Kc, W: Kc.transpose(1, 2) @ W.T @ Q.transpose(1, 2))

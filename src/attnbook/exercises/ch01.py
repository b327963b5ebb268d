"""Checkers for chapter 1: cosine similarity with zero vectors, the top-k keys of every
query in a batch, and bilinear scores q^T W k with keys stored column-wise."""

import torch

from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function, make_compare


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- 1. pairwise cosine similarity, 0 for a zero vector -----------------------------

def _unit_rows(X):
    n = X.norm(dim=-1, keepdim=True)  # (N, 1)
    return torch.where(n > 0, X / torch.where(n > 0, n, 1.0), 0.0)  # zero rows stay zero


def _safe_cosine(Q, K):
    return _unit_rows(Q) @ _unit_rows(K).T  # (T, d) @ (d, S) -> (T, S)


def _with_zero_rows(T, S, d, seed, zero_q=(), zero_k=()):
    Q, K = torch.randn(T, d, generator=_gen(seed)), torch.randn(S, d, generator=_gen(seed + 1))
    Q[list(zero_q)] = 0.0
    K[list(zero_k)] = 0.0
    return Q, K


def _eps_detect(got, expected, case):
    """Right where both vectors are long, smaller in size where one is very short."""
    Q, K = case.args
    short = (Q.norm(dim=-1)[:, None] < 1e-3) | (K.norm(dim=-1)[None, :] < 1e-3)  # (T, S)
    got = torch.as_tensor(got, dtype=torch.float64)
    exp = torch.as_tensor(expected, dtype=torch.float64)
    if got.shape != exp.shape or not torch.isfinite(got).all():
        return False
    if not torch.allclose(got[~short], exp[~short], atol=1e-5, rtol=1e-4):
        return False
    shrunk = got.abs() < exp.abs() - 1e-3
    return bool((shrunk & short).any() and (got.abs() <= exp.abs() + 1e-6).all())


_COSINE_CASES = [
    Case(_with_zero_rows(3, 5, 4, 0, zero_q=[1], zero_k=[3]),
         label="T=3, S=5, d=4, query 1 and key 3 are zero vectors"),
    Case(_with_zero_rows(2, 3, 6, 2, zero_q=[0, 1]), label="every query a zero vector"),
    Case((torch.tensor([[-2.0], [0.0], [3.0]]), torch.tensor([[5.0], [-1.0]])),
         label="d=1: cosines are signs, one query is 0"),
    Case((torch.zeros(1, 3), torch.zeros(1, 3)), label="T=S=1, both vectors zero"),
    Case((1e15 * torch.randn(3, 5, generator=_gen(4)),
          1e-15 * torch.randn(7, 5, generator=_gen(5))),
         label="norms near 1e15 against norms near 1e-15, T=3, S=7, d=5"),
    Case((torch.tensor([[1e-7, 2e-7, -1e-7], [1.0, 0.0, 2.0]]),
          torch.tensor([[3.0, 1.0, 0.0], [1e-7, 0.0, 1e-7], [0.0, 0.0, 0.0]])),
         label="very short but non-zero vectors (norm about 2e-7)"),
]

_COSINE_MISTAKES = [
    Mistake("0 / 0 for a zero vector", "a zero vector has norm 0, and 0 / 0 is nan; this "
            "exercise defines its cosine as 0: divide only where the norm is > 0 "
            "(torch.where), and leave zero rows at 0.",
            wrong=lambda Q, K: (Q @ K.T) / (Q.norm(dim=1)[:, None] * K.norm(dim=1)[None, :])),
    Mistake("added a small eps to the norms", "a / (‖a‖ + eps) shrinks every short vector: "
            "a vector of norm 1e-7 with eps = 1e-8 loses 10% of its cosine. Treat exactly "
            "zero norms separately instead (torch.where(norm > 0, ...)); "
            "F.cosine_similarity clamps each norm at eps = 1e-8 in the same way.",
            detect=_eps_detect),
    Mistake("returned dot products (did not normalise)", "divide every row of Q and of K by "
            "its norm first; the dot product of the unit vectors is the cosine.",
            wrong=lambda Q, K: Q @ K.T),
    Mistake("normalised over the wrong axis", "each *row* is a vector: take the norm over "
            "dim=-1 (the d features), with keepdim=True.",
            wrong=lambda Q, K: (torch.nan_to_num(Q / Q.norm(dim=0))
                                @ torch.nan_to_num(K / K.norm(dim=0)).T)),
    Mistake("gave a zero vector cosine 1", "a zero vector points nowhere: its cosine with "
            "anything is 0 by this exercise's convention, not 1.",
            wrong=lambda Q, K: torch.nan_to_num(
                (Q @ K.T) / (Q.norm(dim=1)[:, None] * K.norm(dim=1)[None, :]), nan=1.0)),
]


def check_safe_cosine(fn) -> CheckResult:
    """Check ``fn(Q, K)``: Q (T, d), K (S, d) -> the (T, S) cosine similarities, 0 wherever
    the query or the key is a zero vector."""
    return check_function(fn, exercise="cosine with zero vectors", reference=_safe_cosine,
                          cases=_COSINE_CASES, mistakes=_COSINE_MISTAKES)


# --- 2. the top-k keys of every query, in a batch -----------------------------------

def _top_k(Q, K, k):
    scores = Q @ K.transpose(-2, -1)  # (B, T, d) @ (B, d, S) -> (B, T, S)
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices  # ties: lower j
    return order[..., :k]  # (B, T, min(k, S))


def _ties_reordered(got, expected, case):
    """The same scores as the answer, best first, but tied keys in another order."""
    Q, K, _ = case.args
    got = torch.as_tensor(got)
    if got.shape != expected.shape or got.dtype != expected.dtype or torch.equal(got, expected):
        return False
    scores = Q @ K.transpose(-2, -1)  # (B, T, S)
    return torch.equal(scores.gather(-1, got), scores.gather(-1, expected))


def _cosine_top_k(Q, K, k):
    qn = Q / Q.norm(dim=-1, keepdim=True)
    kn = K / K.norm(dim=-1, keepdim=True)
    return _top_k(qn, kn, k)


def _ties() -> Case:
    Q = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # (1, 3, 2)
    K = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [1.0, 1.0], [0.0, 2.0]]])
    return Case((Q, K, 3), label="integer vectors with tied scores, k=3 (ties: lower index)")


def _unequal_norms() -> Case:
    g = _gen(21)
    K = torch.randn(2, 6, 4, generator=g) * torch.tensor([0.2, 5.0, 1.0, 0.5, 3.0, 1.0])[:, None]
    return Case((torch.randn(2, 3, 4, generator=g), K, 2),
                label="keys of very different lengths, B=2, T=3, S=6, k=2")


_TOPK_CASES = [
    Case((torch.randn(2, 3, 4, generator=_gen(10)), torch.randn(2, 5, 4, generator=_gen(11)), 2),
         label="B=2, T=3, S=5, d=4, k=2"),
    _unequal_norms(),
    _ties(),
    Case((torch.randn(3, 4, 3, generator=_gen(12)), torch.randn(3, 4, 3, generator=_gen(13)), 1),
         label="B=3, T=S=4, k=1 (the best key only)"),
    Case((torch.randn(2, 2, 5, generator=_gen(14)), torch.randn(2, 3, 5, generator=_gen(15)), 7),
         label="k=7 > S=3 (every key, best first)"),
    Case((torch.randn(1, 1, 3, generator=_gen(16)), torch.randn(1, 1, 3, generator=_gen(17)), 2),
         label="B=T=S=1, k=2"),
]

_TOPK_MISTAKES = [
    Mistake("took the lowest scores", "sort in descending order (or use torch.topk, which "
            "returns the largest): the best key comes first.",
            wrong=lambda Q, K, k: torch.sort(Q @ K.transpose(-2, -1), dim=-1,
                                             stable=True).indices[..., :k]),
    Mistake("ranked by cosine similarity instead of dot product", "the score here is the "
            "dot product, q^T k, as in the score matrix: a long key can beat a well-aligned "
            "short one.", wrong=_cosine_top_k),
    Mistake("ties not broken toward the lower index", "when two keys have the same score, "
            "the lower index comes first; torch.topk does not promise any order for ties, "
            "a stable sort in descending order (torch.sort(scores, dim=-1, "
            "descending=True, stable=True)) keeps it.", detect=_ties_reordered),
    Mistake("mixed the batch elements", "each batch element's queries meet only the same "
            "element's keys; in einsum use one letter for the batch of both: 'btd,bsd->bts'.",
            wrong=lambda Q, K, k: _top_k(Q, K, k) if len(Q) == 1 else torch.sort(
                torch.einsum("btd,csd->bts", Q, K), dim=-1, descending=True,
                stable=True).indices[..., :k]),
]


def check_top_k_keys(fn) -> CheckResult:
    """Check ``fn(Q, K, k)``: Q (B, T, d), K (B, S, d) -> the (B, T, min(k, S)) indices of the
    keys with the largest dot products, best first, ties to the lower index."""
    return check_function(fn, exercise="top-k keys", reference=_top_k, cases=_TOPK_CASES,
                          mistakes=_TOPK_MISTAKES, compare=make_compare(atol=0, rtol=0))


# --- 3. bilinear scores q^T W k, keys stored as columns ------------------------------

def _bilinear(Q, K_cols, W):
    return Q @ W @ K_cols  # (B, T, d_q) @ (d_q, d_k) @ (B, d_k, S) -> (B, T, S)


_BILINEAR_CASES = [
    Case((torch.randn(2, 2, 3, generator=_gen(30)), torch.randn(2, 3, 3, generator=_gen(31)),
          torch.randn(3, 3, generator=_gen(32))),
         label="B=2, T=2, d_q=d_k=S=3, W not symmetric"),
    Case((torch.randn(2, 2, 4, generator=_gen(33)), torch.randn(2, 3, 5, generator=_gen(34)),
          torch.randn(4, 3, generator=_gen(35))),
         label="B=2, T=2, d_q=4, d_k=3, S=5 (W not square)"),
    Case((torch.randn(1, 3, 4, generator=_gen(36)), torch.randn(1, 4, 6, generator=_gen(37)),
          torch.eye(4)), label="W the identity: plain dot products, S=6"),
    Case((torch.randn(3, 1, 1, generator=_gen(38)), torch.randn(3, 2, 1, generator=_gen(39)),
          torch.tensor([[2.0, -1.0]])), label="T=S=1, d_q=1, d_k=2, B=3"),
    Case((torch.randn(1, 5, 2, generator=_gen(40)), torch.randn(1, 2, 7, generator=_gen(41)),
          torch.tensor([[0.0, 1.0], [-1.0, 0.0]])), label="W a rotation by 90°, T=5, S=7"),
]

_BILINEAR_MISTAKES = [
    Mistake("used W transposed", "the score is q^T W k: the query meets W's rows, the key "
            "its columns, so Q @ W (not Q @ W.T).", wrong=lambda Q, Kc, W: Q @ W.T @ Kc),
    Mistake("transposed the stored keys again", "the keys are already columns, shape "
            "(B, d_k, S): multiply by them as they are; transposing is only needed for keys "
            "stored as rows.", wrong=lambda Q, Kc, W: Q @ W @ Kc.transpose(-2, -1)),
    Mistake("left out W", "the score is q^T W k, not q^T k: put W between the query and "
            "the key.", wrong=lambda Q, Kc, W: Q @ Kc),
]


def check_bilinear_scores(fn) -> CheckResult:
    """Check ``fn(Q, K_cols, W)``: Q (B, T, d_q), keys as columns K_cols (B, d_k, S),
    W (d_q, d_k) -> the (B, T, S) scores q_t^T W k_s."""
    return check_function(fn, exercise="bilinear scores", reference=_bilinear,
                          cases=_BILINEAR_CASES, mistakes=_BILINEAR_MISTAKES)


__all__ = ["check_bilinear_scores", "check_safe_cosine", "check_top_k_keys"]

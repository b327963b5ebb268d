"""Checkers for chapter 1: cosine similarity, score matrices, batched scores, nearest neighbour."""

import torch

from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function, make_compare


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- 1. cosine similarity of two vectors -------------------------------------------

def _cosine(a, b):
    return (a @ b) / (a.norm() * b.norm())


_COSINE_CASES = [
    Case((torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])), label="perpendicular vectors"),
    Case((torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0])), label="parallel vectors"),
    Case((torch.tensor([3.0, 4.0]), torch.tensor([-6.0, -8.0])), label="opposite vectors"),
    *[Case((3 * torch.randn(8, generator=_gen(i)), torch.randn(8, generator=_gen(10 + i))),
           label=f"random vectors of length 8 (seed {i})") for i in range(3)],
    Case((torch.tensor([-2.0]), torch.tensor([3.0])), label="vectors of length 1 (d=1)"),
    Case((1e3 * torch.randn(5, generator=_gen(4)), 1e-3 * torch.randn(5, generator=_gen(5))),
         label="a very long and a very short vector (norms 1e3 and 1e-3), d=5"),
]

_COSINE_MISTAKES = [
    Mistake("returned the plain dot product", "cosine similarity divides the dot product by "
            "both norms, ‖a‖ ‖b‖, so that the result lies in [-1, 1].", wrong=lambda a, b: a @ b),
    Mistake("divided by the squared norms", "the norm is the square root of the sum of "
            "squares: use a.norm() (or torch.sqrt((a * a).sum())), not (a * a).sum().",
            wrong=lambda a, b: (a @ b) / ((a * a).sum() * (b * b).sum())),
    Mistake("divided by only one norm", "divide by the product of both norms, ‖a‖ ‖b‖.",
            detect=lambda got, exp, case: any(
                torch.allclose(torch.as_tensor(got, dtype=torch.float32),
                               case.args[0] @ case.args[1] / v.norm(), atol=1e-5)
                for v in case.args)),
    Mistake("returned the angle instead of its cosine", "return cos θ itself; no arccos needed.",
            wrong=lambda a, b: torch.arccos(_cosine(a, b).clamp(-1, 1))),
    Mistake("divided by the sum of the norms", "divide by their product, ‖a‖ ‖b‖.",
            wrong=lambda a, b: (a @ b) / (a.norm() + b.norm())),
    Mistake("took the absolute value", "cosine similarity keeps its sign: opposite vectors "
            "have -1, not 1.", wrong=lambda a, b: _cosine(a, b).abs()),
]


def check_cosine_similarity(fn) -> CheckResult:
    """Check ``fn(a, b)``: the cosine similarity of two 1-D tensors, a scalar."""
    return check_function(fn, exercise="cosine_similarity", reference=_cosine,
                          cases=_COSINE_CASES, mistakes=_COSINE_MISTAKES)


# --- 2. the score matrix of queries against keys ---------------------------------

def _scores(Q, K):
    return Q @ K.T  # (T, d) @ (d, S) -> (T, S)


_SCORE_CASES = [
    Case((torch.randn(3, 4, generator=_gen(1)), torch.randn(5, 4, generator=_gen(2))),
         label="T=3 queries, S=5 keys, d=4"),
    Case((torch.randn(4, 2, generator=_gen(3)), torch.randn(4, 2, generator=_gen(4))),
         label="T=S=4, d=2"),
    Case((torch.randn(1, 6, generator=_gen(5)), torch.randn(7, 6, generator=_gen(6))),
         label="one query, S=7 keys, d=6"),
    Case((torch.randn(5, 3, generator=_gen(13)), torch.randn(1, 3, generator=_gen(14))),
         label="T=5 queries, one key, d=3"),
    Case((torch.tensor([[2.0]]), torch.tensor([[-3.0]])), label="T=S=d=1"),
]

_SCORE_MISTAKES = [
    Mistake("keys × queries instead of queries × keys", "row i of the score matrix belongs to "
            "query i: compute Q @ K.T, shape (T, S), not K @ Q.T.", wrong=lambda Q, K: K @ Q.T),
    Mistake("element-wise product instead of dot products", "`Q * K` multiplies entries "
            "pairwise; the score of query i and key j needs the sum over d: Q @ K.T.",
            detect=lambda got, exp, case: case.args[0].shape == case.args[1].shape
            and torch.allclose(torch.as_tensor(got), case.args[0] * case.args[1])),
    Mistake("normalised the vectors (cosine instead of dot product)", "this exercise asks for "
            "raw dot products; leave the vectors as they are.",
            wrong=lambda Q, K: (Q / Q.norm(dim=1, keepdim=True)) @ (K / K.norm(dim=1,
                                                                               keepdim=True)).T),
]


def check_score_matrix(fn) -> CheckResult:
    """Check ``fn(Q, K)``: Q (T, d), K (S, d) -> the (T, S) matrix of dot products."""
    return check_function(fn, exercise="score_matrix", reference=_scores, cases=_SCORE_CASES,
                          mistakes=_SCORE_MISTAKES)


# --- 3. batched scores ----------------------------------------------------------

def _batched(Q, K):
    return Q @ K.transpose(1, 2)  # (B, T, d) @ (B, d, S) -> (B, T, S)


_BATCH_CASES = [
    Case((torch.randn(2, 3, 4, generator=_gen(7)), torch.randn(2, 5, 4, generator=_gen(8))),
         label="B=2, T=3, S=5, d=4"),
    Case((torch.randn(3, 4, 4, generator=_gen(9)), torch.randn(3, 4, 4, generator=_gen(10))),
         label="B=3, T=S=d=4"),
    Case((torch.randn(1, 2, 3, generator=_gen(11)), torch.randn(1, 6, 3, generator=_gen(12))),
         label="B=1, T=2, S=6, d=3"),
    Case((torch.randn(5, 1, 3, generator=_gen(15)), torch.randn(5, 3, 3, generator=_gen(16))),
         label="B=5, one query, S=3, d=3"),
    Case((torch.randn(1, 1, 1, generator=_gen(17)), torch.randn(1, 1, 1, generator=_gen(18))),
         label="B=T=S=d=1"),
]

_BATCH_MISTAKES = [
    Mistake("keys × queries instead of queries × keys", "the result should be (B, T, S): "
            "Q @ K.transpose(1, 2), not K @ Q.transpose(1, 2).",
            wrong=lambda Q, K: K @ Q.transpose(1, 2)),
    Mistake("mixed the batch elements", "each batch element's queries meet only the same "
            "element's keys; in einsum use one letter for the batch of both: 'btd,bsd->bts'.",
            wrong=lambda Q, K: torch.einsum("btd,csd->bts", Q, K)),
    Mistake("used only the first batch element", "keep the batch axis: (B, T, d) @ (B, d, S) "
            "-> (B, T, S) computes every element's scores at once.",
            wrong=lambda Q, K: Q[0] @ K[0].T),
]


def check_batched_scores(fn) -> CheckResult:
    """Check ``fn(Q, K)``: Q (B, T, d), K (B, S, d) -> scores (B, T, S)."""
    return check_function(fn, exercise="batched_scores", reference=_batched, cases=_BATCH_CASES,
                          mistakes=_BATCH_MISTAKES)


# --- 4. nearest neighbour by cosine similarity ------------------------------------

def _nearest(query, table):
    sims = (table @ query) / (table.norm(dim=1) * query.norm())
    return int(sims.argmax())


def _long_vector_case() -> Case:
    # Row 2 is long and roughly aligned; row 1 points the same way as the query but is short:
    # the dot product prefers row 2, cosine similarity row 1.
    table = torch.tensor([[0.0, 1.0], [0.1, 0.01], [5.0, 3.0], [-1.0, 0.0]])
    return Case((torch.tensor([1.0, 0.1]), table), label="a short, well-aligned row vs a long one")


_NEAREST_CASES = [
    _long_vector_case(),
    Case((torch.tensor([0.0, -1.0, 0.2]),
          torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, -0.5, 0.1], [0, -9.0, -9.0]])),
         label="one row points the same way"),
    *[Case((torch.randn(6, generator=_gen(20 + i)),
            torch.randn(10, 6, generator=_gen(30 + i)) * torch.arange(1.0, 11.0)[:, None]),
           label=f"10 random rows of growing length (seed {i})") for i in range(3)],
    Case((torch.tensor([0.5, -1.0, 2.0]), torch.tensor([[-1.0, 0.0, 0.5]])),
         label="a table of one row (the answer is 0)"),
    Case((torch.tensor([1.0, 1.0]), torch.tensor([[100.0, 0.0], [0.9, 1.0], [0.0, 50.0],
                                                  [-1.0, -1.0], [2.0, 1.0]])),
         label="5 rows, the best one neither first nor longest"),
]

_NEAREST_MISTAKES = [
    Mistake("ranked by dot product instead of cosine similarity", "a long vector can win the "
            "dot product without pointing the same way; divide by the norms first.",
            wrong=lambda q, table: int((table @ q).argmax())),
    Mistake("took the most dissimilar row (argmin)", "the nearest neighbour has the *largest* "
            "cosine similarity: use argmax.",
            wrong=lambda q, table: int(((table @ q) / table.norm(dim=1)).argmin())),
    Mistake("ranked by Euclidean distance", "that is a different notion of near; this "
            "exercise asks for cosine similarity.",
            wrong=lambda q, table: int((table - q).norm(dim=1).argmin())),
    Mistake("counted rows from 1", "Python and torch count from 0: return the index itself, "
            "not index + 1.", wrong=lambda q, table: _nearest(q, table) + 1),
]


def check_nearest_neighbour(fn) -> CheckResult:
    """Check ``fn(query, table)``: the index (an int) of the row most cosine-similar to query."""
    return check_function(fn, exercise="nearest_neighbour", reference=_nearest,
                          cases=_NEAREST_CASES, mistakes=_NEAREST_MISTAKES,
                          compare=make_compare(atol=0, rtol=0))

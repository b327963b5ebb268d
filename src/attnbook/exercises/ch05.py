"""Checkers for chapter 5: REINFORCE with a leave-one-out baseline, a Gumbel top-k
sample, and local-m (monotonic) window weights.

Shapes: logits and scores (B, S), one row per example, one column per position;
actions (B,) long; rewards (B,); uniform noise (B, S); local-m scores (B, T, S),
one row per decoder step t.

The first exercise is about *gradients*, so its checker differentiates the reader's
function (a ``probe``): it compares the returned value **and** the gradients it sends to
its inputs, which is where the classic mistakes show.
"""

import torch

from attnbook.exercises.checker import Case, CheckResult, Finding, Mistake, check_function
from attnbook.hard_attention import window_positions


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _grads(output, inputs):
    """Gradients of a scalar ``output`` w.r.t. ``inputs``; zeros where none flows."""
    if not (isinstance(output, torch.Tensor) and output.requires_grad):
        return tuple(torch.zeros_like(x) for x in inputs)
    grads = torch.autograd.grad(output, inputs, allow_unused=True)
    pairs = zip(grads, inputs, strict=True)
    return tuple(torch.zeros_like(x) if g is None else g for g, x in pairs)


# Exercise 1: REINFORCE with a leave-one-out baseline ------------------------------------


def _log_probs(logits, actions):
    return torch.log_softmax(logits, -1).gather(-1, actions[:, None]).squeeze(-1)


def _loo(rewards, *, own=False, by_B=False):
    """Each example's baseline: the mean reward of the *other* B - 1 examples."""
    B = rewards.shape[0]
    if own:
        return rewards.mean().expand(B)
    return (rewards.sum() - rewards) / (B if by_B else B - 1)


def reinforce_loo_reference(logits, actions, rewards):
    """-mean((r_i - b_i) log softmax(logits_i)[a_i]) with b_i the mean of the other
    rewards, all treated as constants: logits (B, S), actions (B,), rewards (B,), B >= 2."""
    advantage = (rewards - _loo(rewards)).detach()  # (B,) constants
    return -(advantage * _log_probs(logits, actions)).mean()


def _probe_reinforce(fn):
    """Run ``fn`` on logits and rewards that carry gradients (the rewards come from a
    classifier) and return (loss, d/dlogits, d/drewards)."""

    def probe(logits, actions, rewards):
        inputs = [x.requires_grad_() for x in (logits, rewards)]
        loss = fn(logits, actions, rewards)
        if isinstance(loss, int | float):
            raise Finding(f"your loss is a plain Python number ({type(loss).__name__}): "
                          ".item() or float() cut it off from the logits, so no gradient "
                          "can flow; return the tensor itself")
        if (isinstance(loss, torch.Tensor) and loss.is_floating_point()
                and not loss.requires_grad):
            raise Finding("your loss carries no gradient: it was detached, computed under "
                          "torch.no_grad(), or rebuilt with torch.tensor(...); return the "
                          "tensor computed from the logits")
        if not (isinstance(loss, torch.Tensor) and loss.dim() == 0
                and loss.is_floating_point()):
            return loss, *(torch.zeros_like(x) for x in inputs)
        return (loss.detach(), *_grads(loss, inputs))

    return probe


def _reinforce_case(seed, B, S):
    g = _gen(seed)
    logits = torch.randn(B, S, generator=g)
    actions = torch.multinomial(torch.softmax(logits, -1), 1, generator=g).squeeze(-1)
    rewards = -2.0 + torch.randn(B, generator=g)  # e.g. log-likelihoods: negative
    return Case((logits, actions, rewards), label=f"B={B}, S={S}")


def _extreme_reinforce_case():
    # Logits 400 apart: softmax is exactly 0 at the sampled positions in float32, so
    # log(softmax(...)) is -inf there; log_softmax stays finite (-400).
    logits = torch.tensor([[200.0, 0.0, -200.0], [-200.0, 200.0, 0.0], [0.0, 1.0, 2.0]])
    return Case((logits, torch.tensor([2, 0, 1]), torch.tensor([-1.0, -3.0, -2.5])),
                label="logits 400 apart, each action very unlikely")


REINFORCE_CASES = [
    _reinforce_case(0, 4, 5), _reinforce_case(1, 6, 3), _reinforce_case(2, 8, 7),
    _reinforce_case(3, 2, 2),
    Case((torch.randn(3, 4, generator=_gen(5)), torch.tensor([0, 3, 1]),
          torch.full((3,), -2.0)), label="B=3, every reward the same (-2): no signal"),
    _extreme_reinforce_case(),
]
REINFORCE_OUTPUTS = ("your loss", "the gradient of your loss w.r.t. the logits",
                     "the gradient of your loss w.r.t. the rewards")


def _rl(advantage, logits, actions):
    return -(advantage * _log_probs(logits, actions)).mean()


REINFORCE_MISTAKES = [
    Mistake("the baseline includes the example's own reward",
            "b_i = mean(rewards) contains r_i itself, so r_i - b_i = (1 - 1/B) r_i - ...: "
            "the estimate is biased, most for a small batch. Leave example i out: "
            "b_i = (sum(rewards) - r_i) / (B - 1).",
            wrong=lambda lg, a, r: _rl((r - _loo(r, own=True)).detach(), lg, a)),
    Mistake("divided by B instead of B - 1",
            "the other examples number B - 1: b_i = (sum(rewards) - r_i) / (B - 1).",
            wrong=lambda lg, a, r: _rl((r - _loo(r, by_B=True)).detach(), lg, a)),
    Mistake("rewards not detached",
            "the rewards (and the baseline built from them) are numbers the policy is scored "
            "with: wrap the whole advantage in .detach() so no gradient flows into them.",
            wrong=lambda lg, a, r: _rl(r - _loo(r), lg, a)),
    Mistake("baseline ignored",
            "without the baseline the estimate is unbiased but much noisier; subtract b_i.",
            wrong=lambda lg, a, r: _rl(r.detach(), lg, a)),
    Mistake("wrong sign",
            "we *minimise* a loss but want to *raise* the expected reward, so the loss is "
            "minus (r - b) log p(a).",
            wrong=lambda lg, a, r: -_rl((r - _loo(r)).detach(), lg, a)),
    Mistake("log of the softmax instead of log_softmax",
            "log(softmax(z)) is -inf where the softmax underflows to 0 (logits far apart); "
            "log_softmax computes z - logsumexp(z) and stays finite.",
            wrong=lambda lg, a, r: -((r - _loo(r)).detach() * torch.log(
                torch.softmax(lg, -1)).gather(-1, a[:, None]).squeeze(-1)).mean()),
    Mistake("sum instead of mean",
            "average over the batch (.mean()), so the step size does not grow with B.",
            wrong=lambda lg, a, r: -((r - _loo(r)).detach() * _log_probs(lg, a)).sum()),
]


def check_reinforce_loo(fn) -> CheckResult:
    """``fn(logits (B, S), actions (B,), rewards (B,)) -> scalar loss``, B >= 2."""
    return check_function(fn, exercise="REINFORCE with a leave-one-out baseline",
                          reference=reinforce_loo_reference, cases=REINFORCE_CASES,
                          mistakes=REINFORCE_MISTAKES, probe=_probe_reinforce,
                          output_names=REINFORCE_OUTPUTS)


# Exercise 2: a Gumbel top-k sample ------------------------------------------------------


def _g(u):
    return -torch.log(-torch.log(u))


def gumbel_top_k_reference(logits, uniform, k):
    """k distinct positions drawn without replacement from softmax(logits), in the order
    drawn: logits (B, S), uniform noise (B, S) in (0, 1), 1 <= k <= S -> (B, k) long."""
    return torch.topk(logits + _g(uniform), k, dim=-1).indices


def _topk_case(seed, B, S, k, scale=1.0):
    g = _gen(seed)
    logits = scale * torch.randn(B, S, generator=g)
    uniform = torch.rand(B, S, generator=g).clamp(1e-6, 1 - 1e-6)
    return Case((logits, uniform, k), label=f"B={B}, S={S}, k={k}")


def _edge_topk_case():
    # Noise at the very ends of (0, 1): g is about -2.6 and 13.8.
    logits = torch.zeros(2, 6)
    uniform = torch.linspace(0.2, 0.7, 6).repeat(2, 1)  # distinct: no ties
    uniform[0, 4], uniform[1, 0] = 1 - 1e-6, 1e-6
    return Case((logits, uniform, 3), label="B=2, S=6, k=3, equal logits, noise near 0 and 1")


TOPK_CASES = [_topk_case(0, 3, 6, 2), _topk_case(1, 4, 5, 5), _topk_case(2, 2, 7, 1),
              _topk_case(3, 3, 8, 3, scale=3.0), _topk_case(4, 1, 1, 1),
              _topk_case(6, 2, 5, 2, scale=1e4), _edge_topk_case()]

TOPK_MISTAKES = [
    Mistake("noise forgotten",
            "without the Gumbel noise the result is always the k largest logits: not a "
            "sample. Add g = -log(-log(u)) to the logits first.",
            wrong=lambda lg, u, k: torch.topk(lg, k, -1).indices),
    Mistake("Gumbel noise missing a log",
            "-log(u) is exponential noise, not Gumbel; the Gumbel transform is -log(-log(u)).",
            wrong=lambda lg, u, k: torch.topk(lg - torch.log(u), k, -1).indices),
    Mistake("Gumbel noise with the wrong sign",
            "g = -log(-log(u)), with a minus in front; log(-log(u)) is a mirrored Gumbel.",
            wrong=lambda lg, u, k: torch.topk(lg - _g(u), k, -1).indices),
    Mistake("took the k smallest",
            "the positions drawn are those with the *largest* perturbed logits (largest=True).",
            wrong=lambda lg, u, k: torch.topk(lg + _g(u), k, -1, largest=False).indices),
    Mistake("positions in ascending order, not in the order drawn",
            "the first column is the first draw (the largest perturbed logit), the second the "
            "next: keep topk's order, do not sort the indices.",
            wrong=lambda lg, u, k: torch.topk(lg + _g(u), k, -1).indices.sort(-1).values),
    Mistake("the same noise draw repeated: one position k times",
            "argmax of one perturbed row, repeated, is sampling *with* replacement from a "
            "single draw; top-k of the perturbed logits gives k distinct positions.",
            wrong=lambda lg, u, k: (lg + _g(u)).argmax(-1, keepdim=True).expand(-1, k)),
]


def check_gumbel_top_k(fn) -> CheckResult:
    """``fn(logits (B, S), uniform (B, S), k) -> (B, k)`` long positions, in draw order."""
    return check_function(fn, exercise="Gumbel top-k sample",
                          reference=gumbel_top_k_reference, cases=TOPK_CASES,
                          mistakes=TOPK_MISTAKES)


# Exercise 3: local-m window weights -----------------------------------------------------


def _window_mask(T, S, D, *, clip=False, half=None):
    """(T, S) bool: step t looks at 2D+1 positions around t, shifted inside 0..S-1
    (or, with clip=True, cut at the ends)."""
    half = D if half is None else half
    t = torch.arange(T, dtype=torch.float32)
    if clip:
        return (torch.arange(S)[None] - torch.arange(T)[:, None]).abs() <= half
    positions = window_positions(t, half, S)  # (T, 2*half+1)
    return torch.zeros(T, S, dtype=torch.bool).scatter_(-1, positions, True)


def local_m_reference(scores, D):
    """Local-m weights: scores (B, T, S), half-width D with 2D+1 <= S -> (B, T, S).

    Step t looks at the 2D+1 positions around p_t = t, the window shifted to stay inside
    0..S-1 (as window_positions does); softmax over the window, exactly 0 outside.
    """
    inside = _window_mask(scores.shape[1], scores.shape[2], D)  # (T, S)
    return torch.softmax(scores.masked_fill(~inside, float("-inf")), -1)


def _soft_in(scores, inside):
    return torch.softmax(scores.masked_fill(~inside, float("-inf")), -1)


def _local_case(seed, B, T, S, D, scale=1.0):
    scores = scale * torch.randn(B, T, S, generator=_gen(seed))
    return Case((scores, D), label=f"B={B}, T={T}, S={S}, D={D}")


LOCAL_CASES = [_local_case(0, 2, 8, 8, 2), _local_case(1, 3, 5, 9, 1),
               _local_case(2, 1, 12, 7, 2), _local_case(3, 2, 4, 6, 0),
               _local_case(4, 2, 5, 5, 2),
               Case((150 * torch.randn(2, 6, 9, generator=_gen(5)), 2),
                    label="B=2, T=6, S=9, D=2, scores ±300")]

def _gauss(s, D):  # a Gaussian around p_t = t, sigma = D/2 (local-p's)
    offsets = torch.arange(s.shape[2])[None] - torch.arange(s.shape[1])[:, None]  # (T, S)
    return torch.exp(-offsets**2 / (2 * (max(D, 1) / 2) ** 2))

LOCAL_MISTAKES = [
    Mistake("window cut at the edges instead of shifted",
            "near the first and last positions the window must still hold 2D+1 positions: "
            "shift it inside 0..S-1 (start = clamp(t - D, 0, S - 2D - 1)), as "
            "window_positions does, instead of cutting it.",
            wrong=lambda s, D: _soft_in(s, _window_mask(s.shape[1], s.shape[2], D,
                                                         clip=True))),
    Mistake("weights outside the window not zeroed",
            "local attention looks only at the 2D+1 positions of the window: softmax over "
            "them and give every other position weight exactly 0.",
            wrong=lambda s, D: torch.softmax(s, -1)),
    Mistake("softmax over the whole row, then cut to the window",
            "normalise over the window only: mask the scores outside it *before* the "
            "softmax.",
            wrong=lambda s, D: torch.softmax(s, -1) * _window_mask(s.shape[1], s.shape[2], D)),
    Mistake("a Gaussian added: that is local-p",
            "local-m uses the window alone; the Gaussian around a predicted centre belongs "
            "to local-p, where the centre has to learn.",
            wrong=lambda s, D: _soft_in(s, _window_mask(s.shape[1], s.shape[2], D))
            * _gauss(s, D)),
    Mistake("window of half-width D-1 (off by one)",
            "the window holds 2D+1 positions, both ends included.",
            wrong=lambda s, D: _soft_in(s, _window_mask(s.shape[1], s.shape[2], D, half=D - 1))
            if D > 0 else torch.full_like(s, float("nan"))),
]


def check_local_m_weights(fn) -> CheckResult:
    """``fn(scores (B, T, S), D) -> weights (B, T, S)``, zero outside each step's window."""
    return check_function(fn, exercise="local-m window weights", reference=local_m_reference,
                          cases=LOCAL_CASES, mistakes=LOCAL_MISTAKES)

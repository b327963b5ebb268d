"""Checkers for chapter 5: REINFORCE with a baseline, a Gumbel-softmax sample, local-p weights.

Shapes: logits and scores (B, S), one row per example, one column per position;
actions (B,) long; rewards and baselines (B,) or a scalar; centres (B,).

The first two exercises are about *gradients*, so their checkers differentiate the
reader's function (a ``probe``): they compare the returned value **and** the gradients it
sends to its inputs, which is where the classic mistakes show, and the messages name
which of them differs.
"""

import torch

from attnbook.exercises.checker import Case, CheckResult, Finding, Mistake, check_function
from attnbook.hard_attention import local_p_weights


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _grads(output, inputs):
    """Gradients of a scalar ``output`` w.r.t. ``inputs``; zeros where none flows."""
    if not (isinstance(output, torch.Tensor) and output.requires_grad):
        return tuple(torch.zeros_like(x) for x in inputs)
    grads = torch.autograd.grad(output, inputs, allow_unused=True)
    pairs = zip(grads, inputs, strict=True)
    return tuple(torch.zeros_like(x) if g is None else g for g, x in pairs)


# Exercise 1: REINFORCE with a baseline --------------------------------------------------


def reinforce_reference(logits, actions, rewards, baseline):
    """-mean((r - b) * log softmax(logits)[a]) with r and b constants: a scalar loss.

    logits (B, S) the policy's scores, actions (B,) the sampled positions, rewards (B,),
    baseline (B,) or scalar. Its gradient w.r.t. the logits is minus the REINFORCE estimate.
    """
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, actions[:, None]).squeeze(-1)  # (B,)
    advantage = (rewards - baseline).detach()  # the reward signal is a constant
    return -(advantage * log_probs).mean()


def _probe_reinforce(fn):
    """Run ``fn`` on inputs that all carry gradients (the rewards come from a classifier, the
    baseline from a learned network) and return (loss, d/dlogits, d/drewards, d/dbaseline)."""

    def probe(logits, actions, rewards, baseline):
        # The checker's own copies carry the gradients, so a change made in place is seen.
        inputs = [x.requires_grad_() for x in (logits, rewards, baseline)]
        loss = fn(logits, actions, rewards, baseline)
        if isinstance(loss, int | float):
            raise Finding(f"your loss is a plain Python number ({type(loss).__name__}): .item() "
                          "or float() cut it off from the logits, so no gradient can flow; "
                          "return the tensor itself")
        if isinstance(loss, torch.Tensor) and loss.is_floating_point() and not loss.requires_grad:
            raise Finding("your loss carries no gradient: it was detached, computed under "
                          "torch.no_grad(), or rebuilt with torch.tensor(...); return the tensor "
                          "computed from the logits")
        if not (isinstance(loss, torch.Tensor) and loss.dim() == 0
                and loss.is_floating_point()):
            return loss, *(torch.zeros_like(x) for x in inputs)
        return (loss.detach(), *_grads(loss, inputs))

    return probe


def _log_probs(logits, actions):
    return torch.log_softmax(logits, -1).gather(-1, actions[:, None]).squeeze(-1)


def _reinforce_case(seed, B, S, scalar_baseline=False):
    g = _gen(seed)
    logits = torch.randn(B, S, generator=g)
    actions = torch.multinomial(torch.softmax(logits, -1), 1, generator=g).squeeze(-1)
    rewards = -2.0 + torch.randn(B, generator=g)   # e.g. log-likelihoods: negative
    baseline = torch.tensor(-1.8) if scalar_baseline else -2.0 + 0.3 * torch.randn(B, generator=g)
    kind = "a scalar baseline" if scalar_baseline else "a learned baseline per example"
    return Case((logits, actions, rewards, baseline), label=f"B={B}, S={S}, {kind}")


def _extreme_reinforce_case():
    # Logits 400 apart: softmax gives exactly 0 to the sampled positions in float32, so
    # log(softmax(...)) is -inf there; log_softmax stays finite (-400).
    logits = torch.tensor([[200.0, 0.0, -200.0], [-200.0, 200.0, 0.0]])
    return Case((logits, torch.tensor([2, 0]), torch.tensor([-1.0, -3.0]),
                 torch.tensor([-2.0, -2.0])),
                label="logits 400 apart, each action very unlikely")


REINFORCE_CASES = [_reinforce_case(0, 4, 5), _reinforce_case(1, 6, 3, scalar_baseline=True),
                   _reinforce_case(2, 3, 7), _reinforce_case(3, 1, 2),
                   _extreme_reinforce_case()]
REINFORCE_OUTPUTS = ("your loss", "the gradient of your loss w.r.t. the logits",
                     "the gradient of your loss w.r.t. the rewards",
                     "the gradient of your loss w.r.t. the baseline")

REINFORCE_MISTAKES = [
    Mistake("baseline not detached",
            "your loss sends a gradient into the baseline, so minimising it would drag the "
            "baseline away from the average reward. Use (rewards - baseline).detach(): the "
            "baseline is trained by its own regression loss, not by this one.",
            wrong=lambda lg, a, r, b: -((r.detach() - b) * _log_probs(lg, a)).mean()),
    Mistake("rewards not detached",
            "the reward is a number the policy is scored with, not something to change through "
            "this loss; detach it so no gradient flows into whatever computed it.",
            wrong=lambda lg, a, r, b: -((r - b.detach()) * _log_probs(lg, a)).mean()),
    Mistake("neither rewards nor baseline detached",
            "wrap the whole advantage: (rewards - baseline).detach().",
            wrong=lambda lg, a, r, b: -((r - b) * _log_probs(lg, a)).mean()),
    Mistake("missing log-probability: used the probability",
            "the score-function estimator multiplies by grad log p(a), not grad p(a); take "
            "log_softmax(logits) at the action, not softmax.",
            wrong=lambda lg, a, r, b: -((r - b).detach() * torch.softmax(lg, -1)
                                        .gather(-1, a[:, None]).squeeze(-1)).mean()),
    Mistake("used the raw logit instead of the log-probability",
            "log p(a) = logit_a - logsumexp(logits); without the normaliser the gradient never "
            "lowers the other positions' probabilities. Use log_softmax.",
            wrong=lambda lg, a, r, b: -((r - b).detach() * lg.gather(-1, a[:, None])
                                        .squeeze(-1)).mean()),
    Mistake("wrong sign",
            "we *minimise* a loss but want to *raise* the expected reward, so the loss is "
            "minus (r - b) log p(a).",
            wrong=lambda lg, a, r, b: ((r - b).detach() * _log_probs(lg, a)).mean()),
    Mistake("baseline added instead of subtracted",
            "the advantage is r - b: how much better this sample did than usual.",
            wrong=lambda lg, a, r, b: -((r + b).detach() * _log_probs(lg, a)).mean()),
    Mistake("baseline ignored",
            "without the baseline the estimate is still unbiased but much noisier; use r - b.",
            wrong=lambda lg, a, r, b: -(r.detach() * _log_probs(lg, a)).mean()),
    Mistake("sum instead of mean",
            "average over the batch (.mean()), so the step size does not grow with B.",
            wrong=lambda lg, a, r, b: -((r - b).detach() * _log_probs(lg, a)).sum()),
    Mistake("per-example losses returned",
            "return one number: the mean over the batch.",
            wrong=lambda lg, a, r, b: -(r - b).detach() * _log_probs(lg, a)),
    Mistake("log of the softmax instead of log_softmax",
            "log(softmax(z)) is -inf where the softmax underflows to 0 (logits far apart); "
            "log_softmax computes z - logsumexp(z) and stays finite.",
            wrong=lambda lg, a, r, b: -((r - b).detach() * torch.log(torch.softmax(lg, -1))
                                        .gather(-1, a[:, None]).squeeze(-1)).mean()),
]


def check_reinforce(fn) -> CheckResult:
    """``fn(logits (B, S), actions (B,), rewards (B,), baseline (B,) or ()) -> scalar loss``."""
    return check_function(fn, exercise="REINFORCE with a baseline",
                          reference=reinforce_reference, cases=REINFORCE_CASES,
                          mistakes=REINFORCE_MISTAKES, probe=_probe_reinforce,
                          output_names=REINFORCE_OUTPUTS)


# Exercise 2: a straight-through Gumbel-softmax sample -----------------------------------


def gumbel_softmax_reference(logits, uniform, tau):
    """One-hot forward, soft gradient: logits (B, S), uniform noise (B, S) in (0, 1) -> (B, S)."""
    gumbels = -torch.log(-torch.log(uniform))        # Gumbel(0, 1) noise
    soft = torch.softmax((logits + gumbels) / tau, dim=-1)
    hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
    return hard - soft.detach() + soft               # value: hard; gradient: soft's


def _probe_gumbel(fn):
    """Return (sample, gradient of a fixed random weighting of the sample w.r.t. the logits)."""

    def probe(logits, uniform, tau, direction):
        logits.requires_grad_()  # the checker's own copy: a change made in place is seen
        sample = fn(logits, uniform, tau)
        again = fn(logits.detach().clone(), uniform.clone(), tau)
        if (isinstance(sample, torch.Tensor) and isinstance(again, torch.Tensor)
                and sample.shape == again.shape and sample.dtype == again.dtype
                and not bool(((sample.detach() == again) | (sample.isnan() & again.isnan()))
                             .all())):
            raise Finding("your function gives a different sample each time it is called with "
                          "the same inputs: it draws noise of its own (F.gumbel_softmax does) "
                          "instead of using the given `uniform` noise, g = -log(-log(uniform))")
        if not (isinstance(sample, torch.Tensor) and sample.shape == logits.shape
                and sample.is_floating_point()):
            return sample, torch.zeros_like(logits)
        return sample.detach(), _grads((sample * direction).sum(), [logits])[0]

    return probe


def _one_hot(soft):
    return torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)


def _st(soft):
    return _one_hot(soft) - soft.detach() + soft


def _gumbel_case(seed, B, S, tau):
    g = _gen(seed)
    logits = torch.randn(B, S, generator=g)
    uniform = torch.rand(B, S, generator=g).clamp(1e-6, 1 - 1e-6)
    direction = torch.randn(B, S, generator=g)
    return Case((logits, uniform, tau, direction), label=f"B={B}, S={S}, tau={tau}")


def _extreme_gumbel_case():
    # A cold temperature: (logits + g) / tau spreads over about ±300, so an exp without
    # the max subtracted overflows; noise from the very ends of (0, 1).
    g = _gen(3)
    logits = 3 * torch.randn(2, 7, generator=g)
    uniform = torch.rand(2, 7, generator=g)
    uniform[0, :2] = torch.tensor([1e-6, 1 - 1e-6])
    return Case((logits, uniform, 0.05, torch.randn(2, 7, generator=g)),
                label="B=2, S=7, a cold tau=0.05, noise near 0 and 1")


GUMBEL_CASES = [_gumbel_case(0, 3, 5, 1.0), _gumbel_case(1, 4, 6, 0.5),
                _gumbel_case(2, 5, 4, 2.0), _gumbel_case(4, 1, 3, 1.0),
                _extreme_gumbel_case()]
GUMBEL_OUTPUTS = ("your sample", "the gradient your sample sends back to the logits")


def _g(u):
    return -torch.log(-torch.log(u))


GUMBEL_MISTAKES = [
    Mistake("soft sample returned: no straight-through step",
            "the forward value should be one-hot (exactly one 1 per row). Build the one-hot "
            "argmax of the soft sample and return hard - soft.detach() + soft (not "
            "soft - hard.detach() + hard, which has the soft value).",
            wrong=lambda lg, u, t: torch.softmax((lg + _g(u)) / t, -1)),
    Mistake("one-hot without the straight-through gradient",
            "argmax has no gradient, so the logits learn nothing. Add the soft sample back: "
            "hard - soft.detach() + soft has the value of hard and the gradient of soft.",
            wrong=lambda lg, u, t: _one_hot(torch.softmax((lg + _g(u)) / t, -1))),
    Mistake("Gumbel noise missing a log",
            "-log(u) is exponential noise, not Gumbel; the Gumbel transform is -log(-log(u)).",
            wrong=lambda lg, u, t: _st(torch.softmax((lg - torch.log(u)) / t, -1))),
    Mistake("Gumbel noise with the wrong sign",
            "g = -log(-log(u)), with a minus in front; log(-log(u)) is a mirrored Gumbel.",
            wrong=lambda lg, u, t: _st(torch.softmax((lg - _g(u)) / t, -1))),
    Mistake("noise forgotten",
            "without the Gumbel noise the result is always the argmax of the logits: not a "
            "sample. Add g = -log(-log(u)) to the logits first.",
            wrong=lambda lg, u, t: _st(torch.softmax(lg / t, -1))),
    Mistake("temperature ignored",
            "the one-hot value does not depend on tau, but the gradient does: divide "
            "(logits + g) by tau inside the softmax.",
            wrong=lambda lg, u, t: _st(torch.softmax(lg + _g(u), -1))),
    Mistake("temperature multiplied instead of divided",
            "a low temperature should sharpen the softmax: (logits + g) / tau.",
            wrong=lambda lg, u, t: _st(torch.softmax((lg + _g(u)) * t, -1))),
    Mistake("softmax over the wrong axis",
            "each row (one example) is a distribution over its S positions: softmax(..., dim=-1).",
            wrong=lambda lg, u, t: (lambda s: torch.zeros_like(s).scatter_(
                -1, s.argmax(-1, keepdim=True), 1.0) - s.detach() + s)(
                torch.softmax((lg + _g(u)) / t, 0))),
]


def check_gumbel_softmax(fn) -> CheckResult:
    """``fn(logits (B, S), uniform (B, S), tau) -> (B, S)`` one-hot with soft gradients."""
    return check_function(fn, exercise="Gumbel-softmax sample",
                          reference=gumbel_softmax_reference, cases=GUMBEL_CASES,
                          mistakes=GUMBEL_MISTAKES, probe=_probe_gumbel,
                          output_names=GUMBEL_OUTPUTS)


# Exercise 3: local-p window weights -----------------------------------------------------


def local_p_reference(scores, centre, D):
    """Luong's local-p weights: scores (B, S), centre (B,) real, half-width D -> (B, S).

    Softmax of the scores over the window |s - round(centre)| <= D, times
    exp(-(s - centre)^2 / (2 (D/2)^2)); exactly 0 outside the window.
    """
    return local_p_weights(scores, centre, D)


def _positions(scores):
    return torch.arange(scores.shape[-1], dtype=scores.dtype)


def _gauss(scores, centre, sigma):
    return torch.exp(-(_positions(scores) - centre[:, None]) ** 2 / (2 * sigma**2))


def _inside(scores, window_centre, D):
    return (_positions(scores) - window_centre[:, None]).abs() <= D


def _window_softmax(scores, inside):
    return torch.softmax(scores.masked_fill(~inside, -1e9), -1) * inside


def _local_case(seed, B, S, D, centres):
    scores = torch.randn(B, S, generator=_gen(seed))
    return Case((scores, torch.tensor(centres), D), label=f"B={B}, S={S}, D={D}")


# Centres with fractional parts far from .5 (round and floor differ on most of them), and
# windows that fit inside the sequence, so no clamping at the edges is needed.
def _large_local_case():
    # Scores about ±300 apart inside the window: an exp without the max subtracted
    # overflows in float32 (above about 88.7).
    scores = 150 * torch.randn(2, 11, generator=_gen(3))
    return Case((scores, torch.tensor([4.3, 6.6]), 2), label="B=2, S=11, D=2, scores ±300")


LOCAL_CASES = [_local_case(0, 3, 20, 3, [5.7, 10.2, 14.8]),
               _local_case(1, 2, 16, 2, [7.9, 3.6]),
               _local_case(2, 4, 30, 5, [5.0, 12.75, 20.3, 23.6]),
               _local_case(4, 1, 9, 1, [4.2]),
               _large_local_case()]

LOCAL_MISTAKES = [
    Mistake("weights outside the window not zeroed",
            "local attention looks only at the 2D+1 positions around the centre: take the "
            "softmax over the window and give every other position weight exactly 0.",
            wrong=lambda s, p, D: torch.softmax(s, -1) * _gauss(s, p, D / 2)),
    Mistake("softmax over the whole sequence, then cut to the window",
            "normalise over the window only: mask the scores outside it *before* the softmax.",
            wrong=lambda s, p, D: torch.softmax(s, -1) * _inside(s, p.round(), D)
            * _gauss(s, p, D / 2)),
    Mistake("sigma = D instead of D/2",
            "Luong's Gaussian has standard deviation sigma = D/2, so the window edge sits at two "
            "standard deviations: exp(-(s - p)^2 / (2 (D/2)^2)).",
            wrong=lambda s, p, D: _window_softmax(s, _inside(s, p.round(), D)) * _gauss(s, p, D)),
    Mistake("Gaussian forgotten",
            "the softmax inside the window is multiplied by a Gaussian around the predicted "
            "centre; that factor is also what lets the centre learn.",
            wrong=lambda s, p, D: _window_softmax(s, _inside(s, p.round(), D))),
    Mistake("wrong window centre: floor(p) instead of round(p)",
            "centre the window on the nearest integer position, round(p); int() and floor() "
            "shift it left whenever the fractional part is above one half.",
            wrong=lambda s, p, D: _window_softmax(s, _inside(s, p.floor(), D))
            * _gauss(s, p, D / 2)),
    Mistake("Gaussian centred on the rounded position",
            "the window is cut at round(p), but the Gaussian uses the real-valued p: that is "
            "what makes the weights differentiable in p.",
            wrong=lambda s, p, D: _window_softmax(s, _inside(s, p.round(), D))
            * _gauss(s, p.round(), D / 2)),
    Mistake("window of half-width D-1 (off by one)",
            "the window holds positions round(p)-D .. round(p)+D: 2D+1 positions, ends included.",
            wrong=lambda s, p, D: _window_softmax(s, _inside(s, p.round(), D - 1))
            * _gauss(s, p, D / 2)),
]


def check_local_p_weights(fn) -> CheckResult:
    """``fn(scores (B, S), centre (B,), D) -> weights (B, S)``, zero outside the window."""
    return check_function(fn, exercise="local-p window weights", reference=local_p_reference,
                          cases=LOCAL_CASES, mistakes=LOCAL_MISTAKES)

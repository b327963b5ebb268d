"""Shape and dtype checks that say what was expected.

Shape letters follow ``book/notation.md``: B batch, T queries, S keys, d features,
h heads. A dimension is an ``int`` (must match), ``None`` (anything) or a letter
(must match the same letter elsewhere in the call, or in ``dims`` passed in).

The input policy of the whole package lives here too: torch-only functions call
``check_tensor`` (a NumPy array, list or number is refused with a ``TypeError`` that
names the argument and says how to convert it), ``check_same_dtype`` (float32 with
float64 is refused, naming both), ``check_module_input`` (a module compares its input
with the sizes it was built for), ``check_positive_int``, ``check_number``, ``check_ids``
and ``check_not_nan``. ``check_shape`` and ``check_float`` accept NumPy arrays as well.

One rule per kind of input that a function could take for something else and answer
plausibly (a "silent wrong answer"):

- ``check_nonempty``: nothing to compute from (no keys, no positions, no training data);
- ``check_log_probs``: log-probabilities expected (entries <= 0, a row log-sum-exps to 0),
  so logits or probabilities are named as such;
- ``check_distribution``: a distribution expected (>= 0, sums to 1), not counts or scores;
- ``check_device``: a device this machine has, not an int or an absent GPU;
- ``check_copy_options``: a copy of a PyTorch module refuses the options it does not copy.
"""

import math
from collections.abc import Sequence

import numpy as np
import torch

Dim = int | str | None


def _fmt(shape: Sequence[Dim]) -> str:
    return "(" + ", ".join("*" if d is None else str(d) for d in shape) + ")"


def check_shape(x, expected: Sequence[Dim], name: str = "x",
                dims: dict[str, int] | None = None) -> dict[str, int]:
    """Raise ``ValueError`` unless ``x`` (tensor or array) has the ``expected`` shape.

    Returns the letters bound to sizes, so the next check can reuse them::

        dims = check_shape(q, ("B", "T", "d"), "queries")
        check_shape(k, ("B", "S", "d"), "keys", dims)   # same B and d as the queries
    """
    if not isinstance(x, torch.Tensor | np.ndarray):
        raise TypeError(f"{name} should be a torch.Tensor or numpy.ndarray, "
                        f"got {_describe(x)}{_conversion(x, name)}")
    if isinstance(expected, int | str):
        raise TypeError(f"expected shape must be a tuple, e.g. ({expected!r},), "
                        f"got {expected!r}")
    if not isinstance(expected, tuple | list):
        raise TypeError(f"expected shape must be a tuple such as ('B', 'T', 'd'), "
                        f"got {_describe(expected)}")
    dims = dict(dims or {})
    actual = tuple(x.shape)
    if len(actual) != len(expected):
        raise ValueError(f"{name} should have {len(expected)} dimensions "
                         f"{_fmt(expected)}, but it has shape {actual}")
    for want, got in zip(expected, actual, strict=True):
        if isinstance(want, str) and want not in dims:
            dims[want] = got
        need = dims[want] if isinstance(want, str) else want
        if need is not None and need != got:
            bound = {k: v for k, v in dims.items() if k in expected}
            raise ValueError(f"{name} should have shape {_fmt(expected)} with {bound}, "
                             f"but it has shape {actual}")
    return dims


def check_float(x, name: str = "x") -> None:
    """Raise ``TypeError`` unless ``x`` is a floating-point tensor or array."""
    if isinstance(x, torch.Tensor):
        ok, fix = x.is_floating_point(), f"{name}.float()"
    elif isinstance(x, np.ndarray):
        ok, fix = np.issubdtype(x.dtype, np.floating), f"{name}.astype(np.float32)"
    else:
        raise TypeError(f"{name} should be a torch.Tensor or numpy.ndarray, "
                        f"got {_describe(x)}{_conversion(x, name)}")
    if not ok:
        raise TypeError(f"{name} should hold floating-point numbers, got dtype {x.dtype}; "
                        f"convert it with {fix}")


# ---------------------------------------------------------------- the input policy
# Torch-only functions call ``check_tensor``; the check helpers above accept NumPy too.


def _describe(x) -> str:
    """'a numpy.ndarray', 'a list', 'None', 'the int 3': how a learner would name it."""
    if x is None:
        return "None"
    if isinstance(x, np.ndarray):
        return f"a numpy.ndarray of dtype {x.dtype}"
    if isinstance(x, bool | int | float | str):
        return f"the {type(x).__name__} {x!r}"[:60]
    name = type(x).__name__
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _conversion(x, name: str) -> str:
    if isinstance(x, np.ndarray):
        return f"; convert it with torch.as_tensor({name})"
    if isinstance(x, list | tuple | int | float) and not isinstance(x, bool):
        return f"; convert it with torch.tensor({name})"
    return ""


_KINDS = {
    "float": (lambda t: t.is_floating_point(), "floating-point numbers", ".float()"),
    "int": (lambda t: not t.is_floating_point() and not t.is_complex()
            and t.dtype != torch.bool, "integers", ".long()"),
    "bool": (lambda t: t.dtype == torch.bool, "booleans (True/False)", ".bool()"),
}


def check_tensor(x, name: str = "x", kind: str | None = None) -> None:
    """Raise ``TypeError`` unless ``x`` is a ``torch.Tensor`` (of ``kind`` "float", "int",
    "bool" when given). The message names ``name`` and says how to convert::

        check_tensor(np.ones(3), "keys")
        # TypeError: keys should be a torch.Tensor, got a numpy.ndarray of dtype
        # float64; convert it with torch.as_tensor(keys)
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} should be a torch.Tensor, got {_describe(x)}"
                        f"{_conversion(x, name)}")
    if kind is None:
        return
    ok, what, fix = _KINDS[kind]
    if not ok(x):
        raise TypeError(f"{name} should hold {what}, got dtype {x.dtype}; "
                        f"convert it with {name}{fix}")


def check_same_dtype(*named) -> None:
    """Raise ``TypeError`` unless the tensors passed as ``(x, name)`` pairs share one dtype.

    ``check_same_dtype((q, "queries"), (k, "keys"))``: float32 queries with float64 keys
    would fail deep inside a matrix product; here the message names both.
    """
    (first, first_name), *rest = named
    for x, name in named:  # a NumPy dtype never equals a torch one: say which is NumPy
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} should be a torch.Tensor, got {_describe(x)}"
                            f"{_conversion(x, name)}")
    for x, name in rest:
        if x.dtype != first.dtype:
            raise TypeError(f"{first_name} has dtype {first.dtype} but {name} has dtype "
                            f"{x.dtype}; use one dtype for both, e.g. "
                            f"{name}.to({first_name}.dtype)")


def check_module_input(x, name: str, module, size: int, built: str) -> None:
    """Raise unless ``x``'s last dimension is ``size`` and its dtype is ``module``'s.

    ``built`` names the constructor argument, for "queries have 8 features but this
    GeneralScore was built for query_size=16".
    """
    owner = type(module).__name__
    if x.shape[-1] != size:
        raise ValueError(f"{name} have {x.shape[-1]} features (shape {tuple(x.shape)}) but "
                         f"this {owner} was built for {built}={size}")
    param = next(module.parameters(), None)
    if param is not None and x.is_floating_point() and x.dtype != param.dtype:
        raise TypeError(f"{name} have dtype {x.dtype} but this {owner}'s weights are "
                        f"{param.dtype}; convert with {name}.to({param.dtype}) "
                        f"(or the model with .to({x.dtype}))")


def check_positive_int(n, name: str = "n", minimum: int = 1) -> int:
    """Raise unless ``n`` is an int (not a bool or a float) with ``n >= minimum``; return it."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"{name} should be an int, got {_describe(n)}")
    if n < minimum:
        raise ValueError(f"{name} should be >= {minimum}, got {n}")
    return int(n)


def check_number(x, name: str = "x", above: float | None = None) -> float:
    """Raise unless ``x`` is a finite real number (an int or a float, not a bool), greater
    than ``above`` when given; return it as a float."""
    if above is not None:
        above = check_number(above, "above")
    if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating):
        raise TypeError(f"{name} should be a number, got {_describe(x)}")
    if not math.isfinite(x) or (above is not None and not x > above):
        bound = "" if above is None else f" > {above:g}"
        raise ValueError(f"{name} should be a finite number{bound}, got {x!r}")
    return float(x)


def check_not_nan(x, name: str = "x") -> None:
    """Raise ``ValueError`` if ``x`` holds a ``nan``: for functions that would otherwise
    hide it behind a choice (argmax, sampling, rounding, a threshold)."""
    if not isinstance(x, torch.Tensor | np.ndarray):
        raise TypeError(f"{name} should be a torch.Tensor or numpy.ndarray, "
                        f"got {_describe(x)}{_conversion(x, name)}")
    if not (x.is_floating_point() if isinstance(x, torch.Tensor)
            else np.issubdtype(x.dtype, np.floating)):
        return  # integers and booleans hold no nan
    bad = torch.isnan(x) if isinstance(x, torch.Tensor) else np.isnan(x)
    if bad.any():
        where = tuple(int(i) for i in (bad.nonzero()[0] if isinstance(x, torch.Tensor)
                                       else np.argwhere(bad)[0]))
        raise ValueError(f"{name} contains nan (first at index {where}); look for a "
                         f"division by zero or an overflow upstream")


def check_ids(ids, name: str, vocab_size: int) -> None:
    """Raise unless ``ids`` is an integer tensor of token ids in ``0 .. vocab_size - 1``."""
    check_tensor(ids, name, "int")
    check_positive_int(vocab_size, "vocab_size")
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise ValueError(f"{name} holds the token id {int(bad)}, but the vocabulary has "
                         f"{vocab_size} ids (0 .. {vocab_size - 1})")


# ---------------------------------------------------------------- rules by kind of input
# One rule per kind of input that a function can take for something else and answer
# plausibly: an empty set, log-probabilities, a distribution, a device, a copied module.


def _check_dim(dim, x, allow_none: bool = False) -> None:
    """``dim`` names an axis of ``x`` (an int in -x.dim() .. x.dim() - 1), or is None."""
    if dim is None and allow_none:
        return
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
        raise TypeError(f"dim should be an int (an axis){' or None' if allow_none else ''}, "
                        f"got {_describe(dim)}")
    if not -max(x.ndim, 1) <= dim < max(x.ndim, 1):
        raise ValueError(f"dim = {dim} is not an axis of a tensor of shape {tuple(x.shape)}")


def _check_flag(flag, name: str) -> None:
    if not isinstance(flag, bool):
        raise TypeError(f"{name} should be True or False, got {_describe(flag)}")


def check_nonempty(x, name: str, dim: int | None = None, what: str = "entries",
                   why: str = "") -> None:
    """The rule for "empty": raise ``ValueError`` if ``x`` has nothing where a result is
    computed *from* it.

    ``x`` is a tensor, an array or a sequence. With ``dim``, ``x.shape[dim]`` must be at
    least 1 (e.g. the keys of attention, ``dim=-2``); without, ``x`` must hold at least
    one element. ``what`` names the missing things ("keys (S = 0)"), ``why`` says what
    needs them. An empty input whose answer is empty (no queries: no outputs; an empty
    batch) is not refused by the package; a weighted average over no keys, a mean over
    no positions or a training set without examples is::

        check_nonempty(keys, "keys", dim=-2, what="positions (S = 0)",
                       why="attention needs at least one key to weigh")
        # ValueError: keys has no positions (S = 0), shape (2, 0, 8): attention needs
        # at least one key to weigh
    """
    for text, label in ((what, "what"), (why, "why")):
        if not isinstance(text, str):
            raise TypeError(f"{label} should be a str, got {_describe(text)}")
    if isinstance(x, torch.Tensor | np.ndarray):
        _check_dim(dim, x, allow_none=True)
        size = x.size if isinstance(x, np.ndarray) and dim is None else (
            x.numel() if dim is None else x.shape[dim])
        shape = f", shape {tuple(x.shape)}"
    elif dim is None and hasattr(x, "__len__") and not isinstance(x, str):
        size, shape = len(x), ""
    else:
        raise TypeError(f"{name} should be a tensor, an array or a sequence (dim only for "
                        f"the first two), got {_describe(x)}")
    if size == 0:
        raise ValueError(f"{name} has no {what}{shape}" + (f": {why}" if why else ""))


def _tolerance(dtype: torch.dtype, atol: float | None) -> float:
    """1e-3, or more for a 16-bit dtype whose rounding is coarser (16 units of its eps)."""
    if atol is not None:
        return check_number(atol, "atol", above=0)
    return max(1e-3, 16 * torch.finfo(dtype).eps)


def check_log_probs(x, name: str = "log_probs", dim: int | None = -1,
                    atol: float | None = None, allow_nan: bool = False) -> None:
    """The rule for "log-probabilities expected": raise ``ValueError`` unless ``x`` holds
    them.

    Every entry is <= 0 (up to ``atol``), and with ``dim`` each slice along ``dim`` is a
    whole distribution: it log-sum-exps to 0 within ``atol`` (default 1e-3; more for
    float16 and bfloat16). A slice of all ``-inf`` (nothing possible) is refused too. A
    ``nan`` is refused unless ``allow_nan`` (then a slice holding one is passed on,
    unchecked). ``dim=None`` checks entries only: one log-probability per sample, as
    REINFORCE takes. The message says what ``x`` looks like instead::

        check_log_probs(logits, "the output of log_prob_fn")
        # ValueError: the output of log_prob_fn should hold log-probabilities (entries
        # <= 0 whose exps sum to 1 along axis -1), but a row log-sum-exps to 4.1, not 0
        # -- logits? apply torch.log_softmax(x, dim=-1)

    One comparison with the host per call, on the error path more.
    """
    check_tensor(x, name, "float")
    _check_flag(allow_nan, "allow_nan")
    tol = _tolerance(x.dtype, atol)
    if dim is not None:
        _check_dim(dim, x)
    if dim is None:
        bad = x > tol
        if not allow_nan:
            bad = bad | torch.isnan(x)
    else:
        if x.dim() == 0:
            raise ValueError(f"{name} should have an axis {dim} to be a distribution over, "
                             f"got a scalar")
        if x.shape[dim] == 0:
            raise ValueError(f"{name} has no entries along axis {dim} (shape "
                             f"{tuple(x.shape)}): a distribution needs at least one outcome")
        lse = torch.logsumexp(x, dim)
        bad = (x > tol).any(dim) | ~(lse.abs() <= tol)  # ~(<=): nan and -inf are bad too
        if allow_nan:
            bad = bad & ~torch.isnan(x).any(dim)
    if not bad.any():
        return
    _explain_log_probs(x, name, dim, tol, allow_nan)


def _explain_log_probs(x, name, dim, tol, allow_nan) -> None:
    """The error of ``check_log_probs``, on its slow path: what ``x`` looks like."""
    head = f"{name} should hold log-probabilities (entries <= 0"
    head += ")" if dim is None else f" whose exps sum to 1 along axis {dim})"
    row = "row" if dim in (-1, x.dim() - 1) else "slice"
    if not allow_nan and torch.isnan(x).any():
        raise ValueError(f"{head}, but it contains nan; look for a division by zero or an "
                         f"overflow upstream")
    finite = x[torch.isfinite(x)]
    probs_like = finite.numel() and bool((finite >= 0).all() and (finite <= 1).all())
    if dim is None:
        hint = ("probabilities? pass their log" if probs_like
                else "a log-probability is never positive")
        raise ValueError(f"{head}, but it holds {float(x.max()):.4g} -- {hint}")
    lse = torch.logsumexp(x, dim)
    if allow_nan:
        lse = lse[~torch.isnan(x).any(dim)]
    lse = lse.flatten()
    if bool((lse == -torch.inf).any()):
        raise ValueError(f"{head}, but a {row} is all -inf: no outcome has any "
                         f"probability")
    worst = float(lse[lse.abs().argmax()])
    if probs_like and bool(((x.sum(dim) - 1).abs() <= tol).all()):
        hint = "probabilities? pass their log"
    else:
        hint = f"logits? apply torch.log_softmax(x, dim={dim})"
    raise ValueError(f"{head}, but a {row} log-sum-exps to {worst:.4g}, not 0 -- {hint}")


def check_distribution(p, name: str = "p", dim: int = -1, atol: float | None = None) -> None:
    """The rule for "a distribution expected": raise ``ValueError`` unless every slice of
    ``p`` along ``dim`` is a probability distribution.

    Entries are finite and >= 0 and each slice sums to 1 within ``atol`` (default 1e-3;
    more for float16 and bfloat16). Counts, scores or logits are refused with a message
    that says which they look like::

        check_distribution(torch.tensor([1., 2.]), "p")
        # ValueError: p should be a distribution along axis -1 (entries >= 0 summing to 1),
        # but a row sums to 3 -- counts? divide them by their sum
    """
    check_tensor(p, name, "float")
    if p.dim() == 0:
        raise ValueError(f"{name} should have at least 1 dimension (a distribution), got a "
                         f"scalar")
    _check_dim(dim, p)
    if p.shape[dim] == 0:
        raise ValueError(f"{name} has no entries along axis {dim} (shape {tuple(p.shape)}): "
                         f"a distribution needs at least one outcome")
    tol = _tolerance(p.dtype, atol)
    total = p.sum(dim)
    bad = ~(p >= 0).all(dim) | ~((total - 1).abs() <= tol)  # ~(>=): nan and inf are bad
    if not bad.any():
        return
    head = (f"{name} should be a distribution along axis {dim} (entries >= 0 summing "
            f"to 1)")
    if not bool(torch.isfinite(p).all()):
        raise ValueError(f"{head}, but it contains nan or inf")
    if bool((p < 0).any()):
        raise ValueError(f"{head}, but it has negative entries (smallest "
                         f"{float(p.min()):.4g}) -- scores? apply softmax first")
    total = total.flatten()
    worst = float(total[(total - 1).abs().argmax()])
    hint = ("counts? divide them by their sum" if worst > 1
            else "a part of one? divide by the sum")
    row = "row" if dim in (-1, p.dim() - 1) else "slice"
    raise ValueError(f"{head}, but a {row} sums to {worst:.4g} -- {hint}")


def check_device(device: str | torch.device | None, name: str = "device"
                 ) -> torch.device | None:
    """The rule for devices: ``None`` (the caller's default) or a device this machine has.

    ``device`` is a ``torch.device`` or a string such as ``"cpu"``, ``"cuda"``,
    ``"cuda:1"`` or ``"mps"``; returns it as a ``torch.device``. An int is refused with
    a ``TypeError`` (PyTorch reads 0 as the first GPU, a reader as "no preference": write
    ``"cuda:0"``). A name PyTorch does not know, or a device absent here (``"cuda"``
    without a CUDA GPU, ``"mps"`` off a Mac), raises ``ValueError`` naming ``name``
    instead of an error deep inside PyTorch or a tensor quietly put somewhere else.
    """
    if device is None:
        return None
    if not isinstance(device, str | torch.device):
        raise TypeError(f"{name} should be a device name such as 'cpu', 'cuda' or "
                        f"'cuda:0', or a torch.device, got {_describe(device)}")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"{name} should be a device name such as 'cpu', 'cuda' or 'mps', "
                         f"got {device!r}") from None
    kind = device.type
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {str(device)!r} was asked for, but torch sees no CUDA "
                             f"GPU; use 'cpu' or attnbook.get_device()")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {str(device)!r} was asked for, but torch sees "
                             f"{torch.cuda.device_count()} CUDA GPU(s)")
    elif kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{name} 'mps' (Apple's GPU) was asked for, but it is not "
                             f"available here; use 'cpu' or attnbook.get_device()")
    elif kind not in ("cpu", "meta"):
        backend = getattr(torch, kind, None)
        available = getattr(backend, "is_available", None)
        if available is None or not available():
            raise ValueError(f"{name} {str(device)!r} is not available here; use 'cpu' or "
                             f"attnbook.get_device()")
    return device


def check_copy_options(ours, theirs, options: dict) -> None:
    """The rule for copying from PyTorch modules: refuse what the copy would not carry.

    ``options`` maps an option's name to ``(our value, their value)``. A function that
    copies ``theirs``' weights into ``ours`` calls this first: where an option differs
    (a ``layer_norm_eps``, a ``dropout``, a ``batch_first``), copying the weights would
    give two modules that compute different functions without a word, so it raises
    ``ValueError`` naming the option and both values.
    """
    if not isinstance(options, dict) or not all(
            isinstance(v, tuple) and len(v) == 2 for v in options.values()):
        raise TypeError(f"options should be a dict {{option: (our value, their value)}}, "
                        f"got {_describe(options)}")
    for option, (mine, other) in options.items():
        if mine != other:
            raise ValueError(f"the modules differ in {option}: theirs "
                             f"({type(theirs).__name__}) has {option} = {other!r}, ours "
                             f"({type(ours).__name__}) {mine!r}; the copy takes the weights "
                             f"only, so build both with the same {option}")

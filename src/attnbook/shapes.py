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

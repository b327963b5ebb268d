"""Shape and dtype checks that say what was expected.

Shape letters follow ``book/notation.md``: B batch, T queries, S keys, d features,
h heads. A dimension is an ``int`` (must match), ``None`` (anything) or a letter
(must match the same letter elsewhere in the call, or in ``dims`` passed in).
"""

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
                        f"got {type(x).__name__}")
    if isinstance(expected, int | str):
        raise TypeError(f"expected shape must be a tuple, e.g. ({expected!r},), "
                        f"got {expected!r}")
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
        ok = x.is_floating_point()
    elif isinstance(x, np.ndarray):
        ok = np.issubdtype(x.dtype, np.floating)
    else:
        raise TypeError(f"{name} should be a torch.Tensor or numpy.ndarray, "
                        f"got {type(x).__name__}")
    if not ok:
        raise TypeError(f"{name} should hold floating-point numbers, got dtype {x.dtype}; "
                        f"convert it with .float()")

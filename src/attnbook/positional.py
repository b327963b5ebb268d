"""Positional information for self-attention, as taught in chapter 7.

Self-attention without positions is permutation equivariant: it cannot tell
"A before B" from "B before A". Four ways to tell it where each token sits:

- ``sinusoidal_encoding``: Vaswani et al.'s fixed table, added to the embeddings;
- ``LearnedPositionalEmbedding``: a trained table, one vector per position;
- ``apply_rope``: rotary position embedding (Su et al.), rotates queries and keys so
  that their dot product depends on the *difference* of positions only;
- ``alibi_bias``: ALiBi (Press et al.), a per-head linear penalty on the distance,
  added to the attention scores.

Shapes (``book/notation.md``): T positions, d model size, h heads, S keys.
"""

import math

import torch
from torch import nn

from attnbook.shapes import check_positive_int, check_tensor


def _check_int(value, name: str, minimum: int = 1) -> None:
    check_positive_int(value, name, minimum)


def _check_even(d: int, what: str) -> None:
    if d % 2:
        raise ValueError(f"d should be even for {what} (features come in pairs "
                         f"(2i, 2i+1), one pair per frequency), got d = {d}")


def _check_base(base) -> None:
    if isinstance(base, bool) or not isinstance(base, int | float) or not base > 1:
        raise ValueError(f"base should be a number > 1, got {base!r}")


def inverse_frequencies(d: int, base: float = 10000.0,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(d/2,) frequencies omega_i = base**(-2i/d), i = 0 .. d/2 - 1, fastest first.

    Computed in float64 and rounded once to ``dtype`` (float32 by default)."""
    _check_int(d, "d")
    _check_even(d, "the frequencies")
    _check_base(base)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype should be a floating-point torch.dtype such as "
                        f"torch.float64, got {dtype!r}")
    two_i = torch.arange(0, d, 2, dtype=torch.float64)  # 0, 2, 4, ..., d-2
    return (base ** (-two_i / d)).to(dtype)


def sinusoidal_encoding(max_len: int, d: int, base: float = 10000.0) -> torch.Tensor:
    """Vaswani et al.'s table, (max_len, d), interleaved sin/cos per frequency.

    PE[p, 2i] = sin(p * omega_i) and PE[p, 2i+1] = cos(p * omega_i) with
    omega_i = base**(-2i/d). Every row has norm sqrt(d/2).
    """
    _check_int(max_len, "max_len")
    _check_int(d, "d")
    _check_even(d, "a sinusoidal encoding")
    _check_base(base)
    positions = torch.arange(max_len, dtype=torch.float64)[:, None]  # (T, 1)
    omega = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    angles = positions * omega  # (T, d/2)
    pe = torch.stack([angles.sin(), angles.cos()], dim=-1)  # (T, d/2, 2): sin, cos
    return pe.reshape(max_len, d).float()  # (T, d): sin, cos, sin, cos, ...


class LearnedPositionalEmbedding(nn.Module):
    """A trained table of ``max_len`` position vectors of size ``d``, added to the input.

    forward(x (B, T, d)) -> x + table[:T]. It knows nothing about positions
    >= ``max_len``: asking for them is an error, not an extrapolation.
    """

    def __init__(self, max_len: int, d: int, init_std: float = 0.02):
        super().__init__()
        _check_int(max_len, "max_len")
        _check_int(d, "d")
        if isinstance(init_std, bool) or not isinstance(init_std, int | float):
            raise TypeError(f"init_std should be a number (the table's standard "
                            f"deviation), got {type(init_std).__name__}")
        if not 0 <= init_std < math.inf:
            raise ValueError(f"init_std should be a finite number >= 0 (the table's "
                             f"standard deviation), got {init_std}")
        self.max_len, self.d = max_len, d
        self.table = nn.Parameter(torch.randn(max_len, d) * init_std)  # (max_len, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", "float")
        if x.dim() < 2:
            raise ValueError(f"x should have shape (B, T, d) or (T, d), got {tuple(x.shape)}")
        T, d = x.shape[-2:]
        if d != self.d:
            raise ValueError(f"x has feature size {d}, but this LearnedPositionalEmbedding "
                             f"was built for d = {self.d}")
        if T > self.max_len:
            raise ValueError(f"sequence length T = {T} exceeds max_len = {self.max_len}: "
                             f"there is no learned vector for positions >= {self.max_len}")
        return x + self.table[:T]  # (B, T, d) + (T, d)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d={self.d}"


def apply_rope(x: torch.Tensor, positions: torch.Tensor | None = None,
               base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (Su et al.): rotate each pair (x[2i], x[2i+1]).

    x (..., T, d) with d even; the pair i of the vector at position p turns by the
    angle p * base**(-2i/d). ``positions`` (T,) or any shape broadcastable to
    x.shape[:-1] with as many axes, e.g. (B, T) for x (B, T, d) and (B, 1, T) for
    x (B, h, T, d); integers or floats; defaults to 0 .. T-1. (Positions (B, T) on
    x (B, h, T, d) would be read as one row per head; they are refused.)
    The angles are computed in float64 for a float64 ``x``, else in float32.
    Applied to queries and keys, q_m . k_n then depends on m - n only.
    This is the RoFormer (interleaved) convention; GPT-NeoX/LLaMA code pairs feature
    j with j + d/2 instead ("halves"), a fixed permutation of the same idea.
    """
    check_tensor(x, "x", "float")
    if x.dim() < 2 or x.shape[-1] == 0:
        raise ValueError(f"x should have shape (..., T, d) with d >= 2 features, "
                         f"got {tuple(x.shape)}")
    T, d = x.shape[-2:]
    _check_even(d, "RoPE")
    _check_base(base)
    if positions is None:
        positions = torch.arange(T, device=x.device)
    elif not isinstance(positions, torch.Tensor):
        raise TypeError(f"positions should be a torch.Tensor of shape (T,) = ({T},) or "
                        f"(..., T), got {type(positions).__name__}")
    lead = tuple(x.shape[:-1])  # (..., T)
    try:
        fits = torch.broadcast_shapes(positions.shape, lead) == lead
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"positions of shape {tuple(positions.shape)} do not broadcast to "
                         f"x.shape[:-1] = {lead}")
    if 1 < positions.dim() < len(lead) and any(n != 1 for n in positions.shape[:-1]):
        # (B, T) on (B, h, T): broadcasting aligns from the right, so B would meet h
        raise ValueError(f"positions of shape {tuple(positions.shape)} on x of shape "
                         f"{tuple(x.shape)} are ambiguous: broadcasting would align their "
                         f"first axis with x's axis {len(lead) - positions.dim()}, not the "
                         f"batch; give positions (T,) or as many axes as x.shape[:-1] = "
                         f"{lead}, e.g. positions[:, None, :] for (B, 1, T)")
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    omega = inverse_frequencies(d, base, dtype).to(x.device)  # (d/2,)
    angles = positions.to(device=x.device, dtype=dtype)[..., None] * omega  # (..., T, d/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]  # (..., T, d/2) each
    rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
    return rotated.flatten(-2)  # (..., T, d/2, 2) -> (..., T, d), pairs interleaved again


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """(h,) ALiBi slopes (Press et al.): 2**(-8/h), 2**(-16/h), ... for h a power of 2.

    Otherwise the paper's rule: the slopes of the largest power of two n < h, then
    every other slope of 2n until there are h.
    """
    _check_int(num_heads, "num_heads")

    def powers(n: int) -> list[float]:
        return [2 ** (-8 * (k + 1) / n) for k in range(n)]

    n = 2 ** math.floor(math.log2(num_heads))
    slopes = powers(n) + powers(2 * n)[0::2][: num_heads - n]
    return torch.tensor(slopes)


def alibi_bias(T: int, S: int, num_heads: int) -> torch.Tensor:
    """(h, T, S) ALiBi bias -m_h * |p_i - j| to add to the scores (before the softmax).

    Query i sits at position p_i = i + S - T (the last T of S positions, as when T
    new tokens follow S - T earlier ones; p_i = i when T = S). With a causal mask
    this is Press et al.'s bias; no position is ever added to the tokens. T <= S: more
    queries than keys would put queries at negative positions.
    """
    _check_int(T, "T")
    _check_int(S, "S")
    if T > S:
        raise ValueError(f"T = {T} queries cannot be the last T of S = {S} key positions "
                         f"(query 0 would sit at position {S - T}); give T <= S")
    slopes = alibi_slopes(num_heads)  # (h,)
    query_pos = torch.arange(T)[:, None] + (S - T)  # (T, 1)
    distance = (query_pos - torch.arange(S)[None, :]).abs()  # (T, S)
    return -slopes[:, None, None] * distance  # (h, T, S)

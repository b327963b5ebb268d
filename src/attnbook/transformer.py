"""The Transformer of chapter 9 (Vaswani et al. 2017): blocks, layers, the encoder–decoder
for chapter 6's translation task, a decoder-only language model, and the warm-up schedule.

Shapes (``book/notation.md``): B batch, S source length, T target length, d model size,
h heads, V vocabulary size, L layers. Boolean masks are True where attending is allowed.

- ``FeedForward``: the position-wise network max(0, x W_1 + b_1) W_2 + b_2;
- ``EncoderLayer``: self-attention and FFN, each in a residual branch with LayerNorm,
  ``norm_first=False`` as in the paper (post-LN: x = LN(x + F(x))), ``True`` as used
  today (pre-LN: x = x + F(LN(x)));
- ``DecoderLayer``: causal self-attention, cross-attention to the encoder's output, FFN;
- ``Encoder``/``Decoder``: a stack of layers (pre-LN adds a final LayerNorm);
- ``Transformer``: embeddings * sqrt(d) + sinusoidal positions, encoder, decoder, output
  layer, masks built from the source lengths; ``TransformerLM``: the decoder-only model
  (causal self-attention layers, no cross-attention);
- ``warmup_lr`` / ``warmup_schedule``: lr = d^-0.5 min(step^-0.5, step warmup^-1.5);
- ``copy_encoder_layer_from_torch`` / ``copy_decoder_layer_from_torch``: load the weights
  of ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer`` into ours, which then
  compute the same function (chapter 9 checks it to 1e-5).

Attention weights are returned, never stored: ``forward(..., need_weights=True)``.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from attnbook.attention import causal_mask, padding_mask
from attnbook.multihead import MultiHeadAttention, _check_mask, copy_from_torch
from attnbook.positional import sinusoidal_encoding
from attnbook.shapes import (
    check_module_input,
    check_positive_int,
    check_same_dtype,
    check_shape,
    check_tensor,
)


@dataclass
class TransformerConfig:
    """Settings of the encoder–decoder. ``max_len``: longest sentence it accepts (the
    length of its positional table)."""

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 64
    num_heads: int = 4
    d_ff: int = 128
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    dropout: float = 0.0
    norm_first: bool = False
    max_len: int = 64
    pad: int = 0


@dataclass
class LMConfig:
    """Settings of the decoder-only language model."""

    vocab_size: int
    d_model: int = 64
    num_heads: int = 4
    d_ff: int = 128
    num_layers: int = 2
    dropout: float = 0.0
    norm_first: bool = True
    max_len: int = 64
    pad: int = 0


# --- checks of sizes and inputs (the package's input policy: errors name the argument) --

def _check_dropout(p, name: str = "dropout") -> None:
    if isinstance(p, bool) or not isinstance(p, int | float):
        raise TypeError(f"{name} should be a number in [0, 1), got {type(p).__name__} {p!r}")
    if not 0 <= p < 1:  # also refuses nan
        raise ValueError(f"{name} should lie in [0, 1) (the probability of zeroing a unit), "
                         f"got {p}")


def _check_layer_sizes(d_model, num_heads, d_ff, dropout) -> None:
    check_positive_int(d_model, "d_model")
    check_positive_int(num_heads, "num_heads")
    check_positive_int(d_ff, "d_ff")
    _check_dropout(dropout)


def _check_input(x, name: str, module, d_model: int, dims: dict | None = None) -> dict:
    """x (B, L, d_model): a float tensor of ``module``'s dtype; returns the bound B."""
    check_tensor(x, name, "float")
    dims = check_shape(x, ("B", None, None), name, dims)
    check_module_input(x, name, module, d_model, "d_model")
    return dims


def _min_max(t: torch.Tensor) -> tuple[int, int]:
    """The smallest and largest entry of a non-empty integer tensor (one device sync)."""
    lo, hi = torch.stack((t.min(), t.max())).tolist()
    return lo, hi


class FeedForward(nn.Module):
    """Position-wise FFN: the same two-layer MLP applied to every position, (B, T, d) ->
    (B, T, d) through a wider hidden layer of size d_ff."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        check_positive_int(d_model, "d_model")
        check_positive_int(d_ff, "d_ff")
        _check_dropout(dropout)
        self.d_model = d_model
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., d) -> (..., d): any leading dimensions, the same MLP at each position."""
        check_tensor(x, "x", "float")
        if x.dim() == 0:
            raise ValueError("x should have shape (..., d_model), got a 0-d tensor")
        check_module_input(x, "x", self, self.d_model, "d_model")
        return self.linear2(self.dropout(F.relu(self.linear1(x))))  # (B, T, d_ff) -> (B, T, d)


class EncoderLayer(nn.Module):
    """Self-attention + FFN, each wrapped as a residual branch with LayerNorm."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0,
                 norm_first: bool = False):
        super().__init__()
        _check_layer_sizes(d_model, num_heads, d_ff, dropout)
        self.d_model, self.num_heads = d_model, num_heads
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                need_weights: bool = False):
        """x (B, S, d), mask broadcastable to (B, h, S, S) -> (B, S, d), weights or None."""
        _check_input(x, "x", self, self.d_model)
        B, S, _ = x.shape
        _check_mask(mask, (B, self.num_heads, S, S), "mask")

        def attend(y):
            out, w = self.self_attn(y, y, y, mask=mask, need_weights=need_weights)
            weights.append(w)
            return self.dropout1(out)

        weights = []
        if self.norm_first:  # pre-LN: x + F(LN(x))
            x = x + attend(self.norm1(x))
            x = x + self.dropout2(self.ff(self.norm2(x)))
        else:  # post-LN, as in the paper: LN(x + F(x))
            x = self.norm1(x + attend(x))
            x = self.norm2(x + self.dropout2(self.ff(x)))
        return x, weights[0]


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the encoder output (queries from the
    decoder, keys and values from the source), FFN; each a residual branch with LayerNorm."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0,
                 norm_first: bool = False):
        super().__init__()
        _check_layer_sizes(d_model, num_heads, d_ff, dropout)
        self.d_model, self.num_heads = d_model, num_heads
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.dropout1, self.dropout2, self.dropout3 = (nn.Dropout(dropout) for _ in range(3))
        self.norm_first = norm_first

    def forward(self, x: torch.Tensor, memory: torch.Tensor, self_mask=None,
                memory_mask=None, need_weights: bool = False):
        """x (B, T, d), memory (B, S, d); self_mask broadcastable to (B, h, T, T) (causal),
        memory_mask to (B, h, T, S) (source padding)
        -> (B, T, d), self-attention weights (B, h, T, T), cross-attention (B, h, T, S)."""
        dims = _check_input(x, "x", self, self.d_model)
        _check_input(memory, "memory", self, self.d_model, dims)  # dtype: the layer's, as x's
        (B, T, _), S = x.shape, memory.shape[1]
        _check_mask(self_mask, (B, self.num_heads, T, T), "self_mask")
        _check_mask(memory_mask, (B, self.num_heads, T, S), "memory_mask")

        def self_block(y):
            out, w = self.self_attn(y, y, y, mask=self_mask, need_weights=need_weights)
            weights.append(w)
            return self.dropout1(out)

        def cross_block(y):
            out, w = self.cross_attn(y, memory, memory, mask=memory_mask,
                                     need_weights=need_weights)
            weights.append(w)
            return self.dropout2(out)

        weights = []
        if self.norm_first:
            x = x + self_block(self.norm1(x))
            x = x + cross_block(self.norm2(x))
            x = x + self.dropout3(self.ff(self.norm3(x)))
        else:
            x = self.norm1(x + self_block(x))
            x = self.norm2(x + cross_block(x))
            x = self.norm3(x + self.dropout3(self.ff(x)))
        return x, weights[0], weights[1]


class Encoder(nn.Module):
    """L encoder layers; with pre-LN a final LayerNorm (the residual stream is never
    normalised otherwise)."""

    def __init__(self, num_layers: int, d_model: int, num_heads: int, d_ff: int,
                 dropout: float = 0.0, norm_first: bool = False):
        super().__init__()
        check_positive_int(num_layers, "num_layers")
        self.layers = nn.ModuleList(EncoderLayer(d_model, num_heads, d_ff, dropout, norm_first)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def forward(self, x, mask=None, need_weights: bool = False):
        """x (B, S, d) -> (B, S, d), list of L self-attention weights (B, h, S, S) or Nones.
        Each layer checks its input, so a bad ``x`` or ``mask`` is named at the first."""
        weights = []
        for layer in self.layers:
            x, w = layer(x, mask, need_weights)
            weights.append(w)
        return self.norm(x), weights


class Decoder(nn.Module):
    """L decoder layers (+ a final LayerNorm with pre-LN)."""

    def __init__(self, num_layers: int, d_model: int, num_heads: int, d_ff: int,
                 dropout: float = 0.0, norm_first: bool = False):
        super().__init__()
        check_positive_int(num_layers, "num_layers")
        self.layers = nn.ModuleList(DecoderLayer(d_model, num_heads, d_ff, dropout, norm_first)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def forward(self, x, memory, self_mask=None, memory_mask=None, need_weights: bool = False):
        """x (B, T, d), memory (B, S, d) -> (B, T, d), list of L cross-attention weights
        (B, h, T, S) (or Nones). Each layer checks its inputs (same argument names)."""
        cross = []
        for layer in self.layers:
            x, _, w = layer(x, memory, self_mask, memory_mask, need_weights)
            cross.append(w)
        return self.norm(x), cross


def check_tokens(tokens, vocab_size: int, max_len: int, name: str = "tokens") -> None:
    """Token ids (B, L): integers in [0, vocab_size), at most ``max_len`` positions."""
    check_positive_int(vocab_size, "vocab_size")
    check_positive_int(max_len, "max_len")
    check_tensor(tokens, name)  # says how to convert a NumPy array or a list
    if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
        raise TypeError(f"{name} should hold integer token ids, got dtype {tokens.dtype}; "
                        f"convert it with {name}.long()")
    check_shape(tokens, ("B", None), name)
    if tokens.shape[1] == 0:
        raise ValueError(f"{name} has no positions (shape {tuple(tokens.shape)}): attention "
                         f"needs at least one token per sequence")
    if tokens.shape[1] > max_len:
        raise ValueError(f"{name} has {tokens.shape[1]} positions, but the positional table "
                         f"has only max_len = {max_len}: build the model with a larger max_len")
    if tokens.numel():
        lo, hi = _min_max(tokens)
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"{name} holds ids outside the vocabulary [0, {vocab_size}): "
                             f"min {lo}, max {hi}")


class Embedding(nn.Module):
    """Token embedding * sqrt(d) + sinusoidal position, then dropout: (B, L) -> (B, L, d)."""

    def __init__(self, vocab_size: int, d_model: int, max_len: int, pad: int,
                 dropout: float = 0.0):
        super().__init__()
        check_positive_int(vocab_size, "vocab_size")
        check_positive_int(d_model, "d_model")
        check_positive_int(max_len, "max_len")
        if d_model % 2:
            raise ValueError(f"d_model should be even (the sinusoidal positions come in "
                             f"sin/cos pairs), got {d_model}")
        check_positive_int(pad, "pad", minimum=0)
        if pad >= vocab_size:
            raise ValueError(f"pad should be a token id (0 .. {vocab_size - 1}), got {pad}")
        _check_dropout(dropout)
        self.vocab_size, self.max_len = vocab_size, max_len
        self.tokens = nn.Embedding(vocab_size, d_model, padding_idx=pad)
        # as in the paper: N(0, 1/d) so that embedding * sqrt(d) has unit variance, like
        # the positions (nn.Embedding's N(0, 1) would make the tokens sqrt(d) times louder)
        nn.init.normal_(self.tokens.weight, std=d_model**-0.5)
        with torch.no_grad():
            self.tokens.weight[pad].zero_()
        self.register_buffer("positions", sinusoidal_encoding(max_len, d_model),
                             persistent=False)  # (max_len, d)
        self.dropout = nn.Dropout(dropout)
        self.scale = math.sqrt(d_model)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, L), integers in [0, vocab_size), L <= max_len -> (B, L, d)."""
        check_tokens(ids, self.vocab_size, self.max_len, "ids")
        x = self.tokens(ids) * self.scale + self.positions[: ids.shape[1]]  # (B, L, d)
        return self.dropout(x)


def _check_config(cfg, cls, example: str, sizes: tuple[str, ...], vocabs: tuple[str, ...]):
    if not isinstance(cfg, cls):
        raise TypeError(f"cfg should be a {cls.__name__}, e.g. {example}, "
                        f"got {type(cfg).__name__}")
    for name in sizes:
        check_positive_int(getattr(cfg, name), f"cfg.{name}")
    check_positive_int(cfg.pad, "cfg.pad", minimum=0)
    smallest = min(getattr(cfg, v) for v in vocabs)
    if cfg.pad >= smallest:
        raise ValueError(f"cfg.pad should be a token id of every vocabulary "
                         f"(0 .. {smallest - 1}), got {cfg.pad}")
    _check_dropout(cfg.dropout, "cfg.dropout")


def _check_prefixes(prefixes, vocab_size: int, max_len: int) -> None:
    """prefixes (N, t) with t >= 1: what a search hands a next-token function."""
    if isinstance(prefixes, torch.Tensor) and prefixes.ndim == 2 and prefixes.shape[1] == 0:
        raise ValueError("prefixes have no tokens (shape (N, 0)): each prefix starts "
                         "with <bos>")
    check_tokens(prefixes, vocab_size, max_len, "prefixes")


class Transformer(nn.Module):
    """The encoder–decoder for chapter 6's task: ``forward(src, src_len, tgt_in)`` gives
    logits (B, T, V) and, with ``need_weights``, cross-attention (B, L, h, T, S)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        _check_config(cfg, TransformerConfig, "TransformerConfig(src_vocab_size=40, "
                      "tgt_vocab_size=43)",
                      ("src_vocab_size", "tgt_vocab_size", "d_model", "num_heads", "d_ff",
                       "num_encoder_layers", "num_decoder_layers", "max_len"),
                      ("src_vocab_size", "tgt_vocab_size"))
        self.cfg = cfg
        d = cfg.d_model
        self.src_embed = Embedding(cfg.src_vocab_size, d, cfg.max_len, cfg.pad, cfg.dropout)
        self.tgt_embed = Embedding(cfg.tgt_vocab_size, d, cfg.max_len, cfg.pad, cfg.dropout)
        self.encoder = Encoder(cfg.num_encoder_layers, d, cfg.num_heads, cfg.d_ff,
                               cfg.dropout, cfg.norm_first)
        self.decoder = Decoder(cfg.num_decoder_layers, d, cfg.num_heads, cfg.d_ff,
                               cfg.dropout, cfg.norm_first)
        self.out = nn.Linear(d, cfg.tgt_vocab_size)

    def _src_len(self, src: torch.Tensor, src_len) -> torch.Tensor:
        """src_len (B,) in 0 .. S, checked; None: count the non-padding tokens of src."""
        if src_len is None:
            return (src != self.cfg.pad).sum(1)
        check_tensor(src_len, "src_len", "int")
        check_shape(src_len, ("B",), "src_len", {"B": src.shape[0]})
        S = src.shape[1]
        if src_len.numel():
            lo, hi = _min_max(src_len)
            if lo < 0 or hi > S:
                raise ValueError(f"src_len should lie in 0 .. S = {S} (the padded length of "
                                 f"src), got min {lo}, max {hi}")
        return src_len

    def _encode(self, src, src_len):
        keep = padding_mask(src_len.to(src.device), src.shape[1])[:, None, None]  # (B,1,1,S)
        memory, _ = self.encoder(self.src_embed(src), keep)
        return memory, keep

    def encode(self, src: torch.Tensor, src_len: torch.Tensor | None = None):
        """src (B, S), src_len (B,) (default: count non-padding tokens)
        -> memory (B, S, d), source mask (B, 1, 1, S) True at real tokens."""
        check_tokens(src, self.cfg.src_vocab_size, self.cfg.max_len, "src")
        return self._encode(src, self._src_len(src, src_len))

    def _decode(self, tgt_in, memory, src_keep, need_weights=False):
        T = tgt_in.shape[1]
        x, cross = self.decoder(self.tgt_embed(tgt_in), memory,
                                causal_mask(T, device=tgt_in.device), src_keep, need_weights)
        return self.out(x), (torch.stack(cross, 1) if need_weights else None)

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor,
               src_keep: torch.Tensor | None, need_weights: bool = False):
        """tgt_in (B, T), memory (B, S, d) from ``encode``, src_keep (B, 1, 1, S) its source
        mask (``None``: no source padding, every position is attended)
        -> logits (B, T, V), cross-attention (B, L, h, T, S) or None."""
        check_tokens(tgt_in, self.cfg.tgt_vocab_size, self.cfg.max_len, "tgt_in")
        dims = check_shape(tgt_in, ("B", "T"), "tgt_in")
        check_tensor(memory, "memory", "float")
        dims = check_shape(memory, ("B", "S", None), "memory", dims)
        check_module_input(memory, "memory", self, self.cfg.d_model, "d_model")
        _check_mask(src_keep, (dims["B"], self.cfg.num_heads, dims["T"], dims["S"]), "src_keep")
        return self._decode(tgt_in, memory, src_keep, need_weights)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor | None, tgt_in: torch.Tensor,
                need_weights: bool = False):
        """Teacher forcing: src (B, S), src_len (B,), tgt_in (B, T)
        -> logits (B, T, V), cross-attention weights (B, L, h, T, S) or None."""
        check_tokens(src, self.cfg.src_vocab_size, self.cfg.max_len, "src")
        check_tokens(tgt_in, self.cfg.tgt_vocab_size, self.cfg.max_len, "tgt_in")
        check_shape(tgt_in, ("B", "T"), "tgt_in", {"B": src.shape[0]})
        memory, keep = self._encode(src, self._src_len(src, src_len))
        return self._decode(tgt_in, memory, keep, need_weights)

    @torch.no_grad()
    def log_prob_fn(self, src: torch.Tensor, src_len: torch.Tensor | None = None):
        """Encode the B sources once; return ``fn(prefixes (N, t), rows (N,)) -> (N, V)``,
        the next-token log-probabilities that ``attnbook.decoding`` searches over
        (``rows[i]`` in 0 .. B-1: the source that prefix i continues)."""
        memory, keep = self.encode(src, src_len)
        B = memory.shape[0]

        def fn(prefixes: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            _check_prefixes(prefixes, self.cfg.tgt_vocab_size, self.cfg.max_len)
            check_tensor(rows, "rows", "int")
            check_shape(rows, ("N",), "rows", {"N": prefixes.shape[0]})
            if rows.numel():
                lo, hi = _min_max(rows)
                if lo < 0 or hi >= B:
                    raise ValueError(f"rows should pick one of the B = {B} encoded sources "
                                     f"(0 .. {B - 1}), got min {lo}, max {hi}")
            logits, _ = self._decode(prefixes, memory[rows], keep[rows])
            return torch.log_softmax(logits[:, -1], dim=-1)

        return fn


class TransformerLM(nn.Module):
    """Decoder-only language model: embeddings + positions, L layers of causal
    self-attention and FFN (no cross-attention), output layer. tokens (B, T) -> (B, T, V)."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        _check_config(cfg, LMConfig, "LMConfig(vocab_size=43)",
                      ("vocab_size", "d_model", "num_heads", "d_ff", "num_layers", "max_len"),
                      ("vocab_size",))
        self.cfg = cfg
        self.embed = Embedding(cfg.vocab_size, cfg.d_model, cfg.max_len, cfg.pad, cfg.dropout)
        self.blocks = Encoder(cfg.num_layers, cfg.d_model, cfg.num_heads, cfg.d_ff,
                              cfg.dropout, cfg.norm_first)  # causal mask: a decoder
        self.out = nn.Linear(cfg.d_model, cfg.vocab_size)

    def _logits(self, tokens, need_weights=False):
        T = tokens.shape[1]
        x, weights = self.blocks(self.embed(tokens), causal_mask(T, device=tokens.device),
                                 need_weights)
        return self.out(x), (torch.stack(weights, 1) if need_weights else None)

    def forward(self, tokens: torch.Tensor, need_weights: bool = False):
        """tokens (B, T) -> logits (B, T, V), self-attention (B, L, h, T, T) or None."""
        check_tokens(tokens, self.cfg.vocab_size, self.cfg.max_len)
        return self._logits(tokens, need_weights)

    def log_prob_fn(self, prefixes: torch.Tensor, rows: torch.Tensor | None = None):
        """Next-token log-probabilities (N, V) for prefixes (N, t); ``rows`` is ignored."""
        _check_prefixes(prefixes, self.cfg.vocab_size, self.cfg.max_len)
        with torch.no_grad():
            logits, _ = self._logits(prefixes)
        return torch.log_softmax(logits[:, -1], dim=-1)


# --- the warm-up schedule ------------------------------------------------------------

def warmup_lr(step: int, d_model: int, warmup_steps: int, factor: float = 1.0) -> float:
    """The paper's rate: factor * d^-0.5 * min(step^-0.5, step * warmup^-1.5), step >= 1.

    It rises linearly for ``warmup_steps`` steps, peaks at factor / sqrt(d * warmup) and
    then decays like 1 / sqrt(step)."""
    for name, value in (("step", step), ("d_model", d_model), ("warmup_steps", warmup_steps)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} should be an int >= 1, got {value!r}")
    if isinstance(factor, bool) or not isinstance(factor, int | float):
        raise TypeError(f"factor should be a number > 0, got {type(factor).__name__} "
                        f"{factor!r}")
    if not 0 < factor < math.inf:  # also refuses nan
        raise ValueError(f"factor should be a finite number > 0 (it scales the whole "
                         f"rate), got {factor}")
    return factor * d_model**-0.5 * min(step**-0.5, step * warmup_steps**-1.5)


def warmup_schedule(optimizer: torch.optim.Optimizer, d_model: int, warmup_steps: int,
                    factor: float = 1.0) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler that sets the learning rate to ``warmup_lr(step)`` (step counted from 1).
    Build the optimizer with ``lr=1.0``: the schedule gives the whole rate."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer should be a torch.optim.Optimizer, e.g. "
                        f"torch.optim.Adam(model.parameters(), lr=1.0), "
                        f"got {type(optimizer).__name__}")
    warmup_lr(1, d_model, warmup_steps, factor)  # refuse bad settings here, not at step 1
    for group in optimizer.param_groups:
        if group["lr"] != 1.0:
            raise ValueError(f"build the optimizer with lr=1.0 (the schedule is the whole "
                             f"rate), got lr={group['lr']}")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: warmup_lr(i + 1, d_model, warmup_steps, factor))


# --- weights from PyTorch's layers ---------------------------------------------------

def _check_pair(ours, theirs, our_type, their_type) -> None:
    if not isinstance(ours, our_type):
        raise TypeError(f"ours should be a {our_type.__name__}, got {type(ours).__name__}")
    if not isinstance(theirs, their_type):
        raise TypeError(f"theirs should be an nn.{their_type.__name__}, "
                        f"got {type(theirs).__name__}")
    if ours.norm_first != theirs.norm_first:
        raise ValueError(f"norm_first differs: ours {ours.norm_first}, theirs "
                         f"{theirs.norm_first}")
    if not (theirs.activation is F.relu or isinstance(theirs.activation, nn.ReLU)):
        raise ValueError("ours uses ReLU in the feed-forward network; build theirs with "
                         "activation='relu'")
    if not theirs.self_attn.batch_first:
        raise ValueError("build theirs with batch_first=True (ours is batch-first)")


def _copy_linear_and_norms(ours, theirs, norms: int) -> None:
    with torch.no_grad():
        ours.ff.linear1.load_state_dict(theirs.linear1.state_dict())
        ours.ff.linear2.load_state_dict(theirs.linear2.state_dict())
        for i in range(1, norms + 1):
            getattr(ours, f"norm{i}").load_state_dict(getattr(theirs, f"norm{i}").state_dict())


def copy_encoder_layer_from_torch(ours: EncoderLayer, theirs: nn.TransformerEncoderLayer
                                  ) -> EncoderLayer:
    """Load ``theirs`` (batch_first, ReLU) into ``ours``: self_attn, linear1/2 (our
    ``ff``), norm1/2. Returns ``ours``."""
    _check_pair(ours, theirs, EncoderLayer, nn.TransformerEncoderLayer)
    copy_from_torch(ours.self_attn, theirs.self_attn)
    _copy_linear_and_norms(ours, theirs, 2)
    return ours


def copy_decoder_layer_from_torch(ours: DecoderLayer, theirs: nn.TransformerDecoderLayer
                                  ) -> DecoderLayer:
    """Load ``theirs`` into ``ours``: self_attn, multihead_attn (our ``cross_attn``),
    linear1/2, norm1/2/3. Returns ``ours``."""
    _check_pair(ours, theirs, DecoderLayer, nn.TransformerDecoderLayer)
    copy_from_torch(ours.self_attn, theirs.self_attn)
    copy_from_torch(ours.cross_attn, theirs.multihead_attn)
    _copy_linear_and_norms(ours, theirs, 3)
    return ours


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
               eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm written out: normalise each position's d features to mean 0 and
    (biased) variance 1, eps inside the square root, then scale and shift. x (..., d),
    weight and bias (d,) of x's dtype."""
    check_tensor(x, "x", "float")
    if x.dim() == 0 or x.shape[-1] == 0:
        raise ValueError(f"x should have shape (..., d) with d >= 1 features to normalise, "
                         f"got shape {tuple(x.shape)}")
    d = x.shape[-1]
    for t, name in ((weight, "weight"), (bias, "bias")):
        check_tensor(t, name, "float")
        check_shape(t, ("d",), name, {"d": d})
    check_same_dtype((x, "x"), (weight, "weight"), (bias, "bias"))
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 <= eps < math.inf:
        raise ValueError(f"eps should be a finite number >= 0, got {eps!r}")
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)  # divide by d, as nn.LayerNorm does
    return (x - mean) / torch.sqrt(var + eps) * weight + bias

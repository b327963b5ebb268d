"""RNN encoder–decoders for chapter 6: no attention, Bahdanau (additive) and Luong (general).

Shapes (``book/notation.md``): B batch, S source length, T target length, E embedding
size, H hidden size. The annotation of source word j is ``[h_fwd_j; h_bwd_j; x_j]``: the two
GRU states *and the word's own embedding* (size A = 2H + E; ``word_in_annotations=False``
gives Bahdanau et al.'s ``[h_fwd_j; h_bwd_j]``, size 2H). With the word only at its own
position, attention that needs the word has to look there, so argmax attention becomes a
reliable word alignment (chapter 6, section 6.9). For the same reason Luong's score is
divided by sqrt(H), as in chapter 4 (``luong_scaled=False`` gives the paper's unscaled
score, which aligns far less reliably across training runs; ``bench/alignment_seeds.md``).
Each decoder offers

- ``forward(tgt_in, memory) -> (logits, weights)``: teacher forcing over the whole target,
  logits (B, T, V), weights (B, T, S) (``None`` for the decoder without attention);
- ``init_state(memory)`` and ``step(y_prev, state, memory) -> (logits, state, weights)``:
  one step, for greedy decoding. ``forward`` and repeated ``step`` compute the same thing.

Padding never receives attention: scores go through ``attnbook.attention.masked_softmax``.

Token ids are integer ``torch.Tensor``s inside the vocabulary and lengths lie in
``1 .. S``; anything else (NumPy arrays, float ids, an id past the vocabulary, a batch
or a memory of the wrong size) is refused with an error that names the argument.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnbook.attention import masked_softmax, padding_mask
from attnbook.shapes import (
    check_ids,
    check_module_input,
    check_positive_int,
    check_shape,
    check_tensor,
)


@dataclass
class Seq2SeqConfig:
    """Model settings. ``attention`` is ``"none"``, ``"bahdanau"`` or ``"luong"``."""

    src_vocab_size: int
    tgt_vocab_size: int
    embed_dim: int = 32
    hidden_dim: int = 64
    attention: str = "bahdanau"
    pad: int = 0
    word_in_annotations: bool = True
    luong_scaled: bool = True

    def __post_init__(self):
        for name in ("src_vocab_size", "tgt_vocab_size", "embed_dim", "hidden_dim"):
            check_positive_int(getattr(self, name), name)
        if self.attention not in ("none", "bahdanau", "luong"):
            raise ValueError(f"attention should be one of ['bahdanau', 'luong', 'none'], "
                             f"got {self.attention!r}")
        check_positive_int(self.pad, "pad", minimum=0)
        if self.pad >= min(self.src_vocab_size, self.tgt_vocab_size):
            raise ValueError(f"pad should be a token id in both vocabularies, got {self.pad}")

    @property
    def annotation_dim(self) -> int:
        """A = 2H + E with the word's embedding in the annotation, else 2H."""
        return 2 * self.hidden_dim + (self.embed_dim if self.word_in_annotations else 0)


@dataclass
class Memory:
    """What the encoder hands the decoder: annotations (B, S, A), summary (B, H), lengths (B,)."""

    outputs: torch.Tensor
    summary: torch.Tensor
    src_len: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(B, S) True at real source tokens."""
        return padding_mask(self.src_len, self.outputs.shape[1])


def _check_config(cfg) -> None:
    if not isinstance(cfg, Seq2SeqConfig):
        raise TypeError(f"cfg should be a Seq2SeqConfig, got {type(cfg).__name__}")


def _check_state(state, decoder, memory) -> None:
    """The decoder state (B, H) that init_state or the previous step returned."""
    B = memory.outputs.shape[0]
    check_tensor(state, "state", "float")
    check_shape(state, (B, decoder.hidden_dim), "state")
    check_module_input(state, "state", decoder, decoder.hidden_dim, "hidden_dim")


def _check_memory(memory, decoder) -> int:
    """``memory`` from this model's encoder; returns its batch size B."""
    if not isinstance(memory, Memory):
        raise TypeError(f"memory should be the Memory the encoder returns, "
                        f"got {type(memory).__name__}")
    check_module_input(memory.outputs, "memory.outputs", decoder, decoder.annotation_dim,
                       "annotation_dim")
    return memory.outputs.shape[0]


def _check_targets(tokens, name: str, decoder, memory, shape) -> None:
    """Target ids (B, T) or (B,) in the decoder's vocabulary, with the memory's batch size."""
    B = _check_memory(memory, decoder)
    check_ids(tokens, name, decoder.embed.num_embeddings)
    dims = check_shape(tokens, shape, name, {"B": B})
    if dims.get("T", 1) == 0:
        raise ValueError(f"{name} has no steps (T = 0): give at least <bos>")


class Encoder(nn.Module):
    """Bidirectional GRU (+ the word's embedding); padding is skipped (packed), so it never
    leaks into the annotations."""

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        _check_config(cfg)
        self.embed = nn.Embedding(cfg.src_vocab_size, cfg.embed_dim, padding_idx=cfg.pad)
        self.rnn = nn.GRU(cfg.embed_dim, cfg.hidden_dim, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * cfg.hidden_dim, cfg.hidden_dim)
        self.word_in_annotations = cfg.word_in_annotations

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> Memory:
        """src (B, S) token ids, src_len (B,) -> Memory(outputs (B, S, A), summary (B, H))."""
        check_ids(src, "src", self.embed.num_embeddings)
        check_tensor(src_len, "src_len", "int")
        dims = check_shape(src, ("B", "S"), "src")
        if dims["B"] == 0:
            raise ValueError("src is an empty batch (B = 0): give at least one sentence")
        check_shape(src_len, ("B",), "src_len", dims)
        if (src_len < 1).any() or (src_len > dims["S"]).any():
            raise ValueError(f"src_len should lie in 1 .. S = {dims['S']} (the padded length "
                             f"of src), got {src_len.tolist()}")
        emb = self.embed(src)  # (B, S, E), zero at padding
        packed = pack_padded_sequence(emb, src_len.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, h_n = self.rnn(packed)  # h_n (2, B, H): forward's last step, backward's first
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        summary = torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], dim=-1)))  # (B, H)
        if self.word_in_annotations:
            out = torch.cat([out, emb], dim=-1)  # (B, S, 2H + E)
        return Memory(out, summary, src_len)


class PlainDecoder(nn.Module):
    """No attention (Cho et al. 2014): the same fixed summary c feeds every step."""

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        _check_config(cfg)
        H, E = cfg.hidden_dim, cfg.embed_dim
        self.embed = nn.Embedding(cfg.tgt_vocab_size, E, padding_idx=cfg.pad)
        self.rnn = nn.GRU(E + H, H, batch_first=True)
        self.out = nn.Linear(H + H + E, cfg.tgt_vocab_size)
        self.annotation_dim, self.hidden_dim = cfg.annotation_dim, H

    def init_state(self, memory: Memory) -> torch.Tensor:
        _check_memory(memory, self)
        return memory.summary  # (B, H)

    def forward(self, tgt_in: torch.Tensor, memory: Memory):
        """tgt_in (B, T) -> logits (B, T, V), weights None (there is nothing to look at)."""
        _check_targets(tgt_in, "tgt_in", self, memory, ("B", "T"))
        emb = self.embed(tgt_in)  # (B, T, E)
        c = memory.summary[:, None].expand(-1, emb.shape[1], -1)  # (B, T, H): same every step
        states, _ = self.rnn(torch.cat([emb, c], -1), memory.summary[None].contiguous())
        return self.out(torch.cat([states, c, emb], -1)), None

    def step(self, y_prev: torch.Tensor, state: torch.Tensor, memory: Memory):
        _check_targets(y_prev, "y_prev", self, memory, ("B",))
        _check_state(state, self, memory)
        return self._raw_step(y_prev, state, memory)

    def _raw_step(self, y_prev, state, memory):
        emb, c = self.embed(y_prev), memory.summary  # (B, E), (B, H)
        _, h = self.rnn(torch.cat([emb, c], -1)[:, None], state[None].contiguous())
        return self.out(torch.cat([h[0], c, emb], -1)), h[0], None


class AdditiveAttention(nn.Module):
    """Bahdanau scores e_j = v^T tanh(W_q s + W_k h_j); weights = masked softmax over j."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int):
        super().__init__()
        self.query_dim = check_positive_int(query_dim, "query_dim")
        self.key_dim = check_positive_int(key_dim, "key_dim")
        self.attn_dim = check_positive_int(attn_dim, "attn_dim")
        self.W_q = nn.Linear(query_dim, attn_dim, bias=False)
        self.W_k = nn.Linear(key_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, query: torch.Tensor, keys_proj: torch.Tensor, values: torch.Tensor,
                src_len: torch.Tensor):
        """query (B, Hq), keys_proj = W_k(values) (B, S, D), values (B, S, A)
        -> context (B, A), weights (B, S)."""
        for x, name in ((query, "query"), (keys_proj, "keys_proj"), (values, "values")):
            check_tensor(x, name, "float")
        dims = check_shape(query, ("B", None), "query")
        dims = check_shape(keys_proj, ("B", "S", None), "keys_proj", dims)
        check_shape(values, ("B", "S", None), "values", dims)
        check_tensor(src_len, "src_len", "int")
        check_shape(src_len, ("B",), "src_len", dims)
        if (src_len < 1).any() or (src_len > dims["S"]).any():
            raise ValueError(f"src_len should lie in 1 .. S = {dims['S']}, got {src_len.tolist()}")
        check_module_input(query, "query", self, self.query_dim, "query_dim")
        check_module_input(keys_proj, "keys_proj", self, self.attn_dim, "attn_dim")
        check_module_input(values, "values", self, self.key_dim, "key_dim")
        scores = self.v(torch.tanh(keys_proj + self.W_q(query)[:, None])).squeeze(-1)  # (B, S)
        weights = masked_softmax(scores, src_len)  # (B, S), padding gets exactly 0
        return (weights[:, None] @ values).squeeze(1), weights  # (B, 1, S) @ (B, S, A)


class BahdanauDecoder(nn.Module):
    """Attention *before* the step: s_{t-1} looks at the source, the context feeds the GRU."""

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        _check_config(cfg)
        H, E, A = cfg.hidden_dim, cfg.embed_dim, cfg.annotation_dim
        self.embed = nn.Embedding(cfg.tgt_vocab_size, E, padding_idx=cfg.pad)
        self.attention = AdditiveAttention(H, A, H)
        self.cell = nn.GRUCell(E + A, H)
        self.out = nn.Linear(H + A + E, cfg.tgt_vocab_size)
        self.annotation_dim, self.hidden_dim = A, H

    def init_state(self, memory: Memory):
        _check_memory(memory, self)
        # the keys' projection is the same at every step: compute it once
        return memory.summary, self.attention.W_k(memory.outputs)

    def _step(self, emb, state, memory):
        s, keys_proj = state
        context, weights = self.attention(s, keys_proj, memory.outputs, memory.src_len)
        s = self.cell(torch.cat([emb, context], -1), s)  # (B, E + A) -> (B, H)
        return torch.cat([s, context, emb], -1), (s, keys_proj), weights

    def step(self, y_prev: torch.Tensor, state, memory: Memory):
        _check_targets(y_prev, "y_prev", self, memory, ("B",))
        if not isinstance(state, tuple) or len(state) != 2:
            raise TypeError("state should be the pair (s, keys_proj) that init_state(memory) "
                            f"returns, got {type(state).__name__}")
        _check_state(state[0], self, memory)
        return self._raw_step(y_prev, state, memory)

    def _raw_step(self, y_prev, state, memory):
        features, state, weights = self._step(self.embed(y_prev), state, memory)
        return self.out(features), state, weights

    def forward(self, tgt_in: torch.Tensor, memory: Memory):
        """tgt_in (B, T) -> logits (B, T, V), weights (B, T, S)."""
        _check_targets(tgt_in, "tgt_in", self, memory, ("B", "T"))
        emb = self.embed(tgt_in)  # (B, T, E)
        state = self.init_state(memory)
        features, weights = [], []
        for t in range(emb.shape[1]):  # the context of step t depends on s_{t-1}: a loop
            f, state, w = self._step(emb[:, t], state, memory)
            features.append(f)
            weights.append(w)
        return self.out(torch.stack(features, 1)), torch.stack(weights, 1)


class LuongDecoder(nn.Module):
    """Attention *after* the step: h_t = GRU(y_{t-1}, h_{t-1}) scores h_t^T W a_j / sqrt(H)
    ("general", scaled unless ``luong_scaled=False``); the output reads tanh(W_c [c_t; h_t]).
    Without input feeding the GRU never sees the context, so teacher forcing runs over all T
    steps at once."""

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        _check_config(cfg)
        H, E, A = cfg.hidden_dim, cfg.embed_dim, cfg.annotation_dim
        self.embed = nn.Embedding(cfg.tgt_vocab_size, E, padding_idx=cfg.pad)
        self.rnn = nn.GRU(E, H, batch_first=True)
        self.W_a = nn.Linear(A, H, bias=False)  # general score h^T W_a a_j
        self.W_c = nn.Linear(A + H, H)
        self.out = nn.Linear(H, cfg.tgt_vocab_size)
        self.scale = 1 / math.sqrt(H) if cfg.luong_scaled else 1.0
        self.annotation_dim, self.hidden_dim = A, H

    def init_state(self, memory: Memory) -> torch.Tensor:
        _check_memory(memory, self)
        return memory.summary

    def _attend(self, states: torch.Tensor, memory: Memory):
        """states (B, T, H) -> logits (B, T, V), weights (B, T, S)."""
        keys = self.W_a(memory.outputs)  # (B, S, H)
        scores = states @ keys.transpose(1, 2) * self.scale  # (B, T, H) @ (B, H, S): (B, T, S)
        weights = masked_softmax(scores, memory.src_len)  # (B, T, S)
        context = weights @ memory.outputs  # (B, T, S) @ (B, S, A) -> (B, T, A)
        attentional = torch.tanh(self.W_c(torch.cat([context, states], -1)))  # (B, T, H)
        return self.out(attentional), weights

    def forward(self, tgt_in: torch.Tensor, memory: Memory):
        """tgt_in (B, T) -> logits (B, T, V), weights (B, T, S)."""
        _check_targets(tgt_in, "tgt_in", self, memory, ("B", "T"))
        states, _ = self.rnn(self.embed(tgt_in), memory.summary[None].contiguous())
        return self._attend(states, memory)

    def step(self, y_prev: torch.Tensor, state: torch.Tensor, memory: Memory):
        _check_targets(y_prev, "y_prev", self, memory, ("B",))
        _check_state(state, self, memory)
        return self._raw_step(y_prev, state, memory)

    def _raw_step(self, y_prev, state, memory):
        _, h = self.rnn(self.embed(y_prev)[:, None], state[None].contiguous())
        logits, weights = self._attend(h.transpose(0, 1), memory)  # (B, 1, V), (B, 1, S)
        return logits[:, 0], h[0], weights[:, 0]


DECODERS = {"none": PlainDecoder, "bahdanau": BahdanauDecoder, "luong": LuongDecoder}


class Seq2Seq(nn.Module):
    """Encoder + one of the three decoders."""

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        _check_config(cfg)
        if cfg.attention not in DECODERS:
            raise ValueError(f"attention should be one of {sorted(DECODERS)}, "
                             f"got {cfg.attention!r}")
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = DECODERS[cfg.attention](cfg)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor):
        """Teacher forcing: src (B, S), src_len (B,), tgt_in (B, T)
        -> logits (B, T, V), weights (B, T, S) or None."""
        memory = self.encoder(src, src_len)  # checks src first: a bad src is blamed on src
        return self.decoder(tgt_in, memory)


@torch.no_grad()
def greedy_decode(model: Seq2Seq, src: torch.Tensor, src_len: torch.Tensor, bos: int,
                  eos: int, max_len: int = 50):
    """Pick the most likely word at each step until every sentence has produced ``eos``.

    Returns tokens (B, T') (``eos`` included; after it, ``eos`` again as filler),
    lengths (B,) (up to and including the first ``eos``, or ``max_len``) and
    weights (B, T', S) (zeros after a sentence ended; ``None`` without attention).
    """
    if not isinstance(model, Seq2Seq):
        raise TypeError(f"model should be a Seq2Seq, got {type(model).__name__}")
    vocab = model.cfg.tgt_vocab_size
    for token, name in ((bos, "bos"), (eos, "eos")):
        check_positive_int(token, name, minimum=0)
        if token >= vocab:
            raise ValueError(f"{name} = {token} is not a target token id (0 .. {vocab - 1})")
    check_positive_int(max_len, "max_len")
    memory = model.encoder(src, src_len)
    state = model.decoder.init_state(memory)
    B = src.shape[0]
    y = torch.full((B,), bos, dtype=torch.long, device=src.device)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    lengths = torch.full((B,), max_len, dtype=torch.long, device=src.device)
    tokens, weights = [], []
    for t in range(max_len):
        logits, state, w = model.decoder._raw_step(y, state, memory)  # inputs built here
        y = logits.argmax(-1).masked_fill(done, eos)  # (B,)
        tokens.append(y)
        if w is not None:
            weights.append(w.masked_fill(done[:, None], 0.0))
        lengths = torch.where(~done & (y == eos), torch.full_like(lengths, t + 1), lengths)
        done = done | (y == eos)
        if done.all():
            break
    return torch.stack(tokens, 1), lengths, (torch.stack(weights, 1) if weights else None)

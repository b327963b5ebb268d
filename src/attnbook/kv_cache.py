"""The key-value cache of chapter 11: incremental decoding with chapter 9's language model.

A decoder's keys and values of the tokens it has already read never change (causal
attention: a position only looks back). Keep them, and each new token needs one query,
one key and one value per layer instead of recomputing the whole prefix.

Shapes (``book/notation.md``): B batch, g key/value heads (g = h for multi-head
attention, 1 for multi-query, in between for grouped-query), S positions held in the
cache, t new positions, d_h the width of a head, V the vocabulary.

- ``KVCache``: per layer, keys and values (B, g, S, d_h), grown by ``append`` along S;
- ``lm_forward_cached``: ``TransformerLM`` run on the t new tokens only, reading and
  extending the cache; its logits equal the full model's for those positions;
- ``greedy_generate``: greedy decoding with or without the cache (the same tokens);
- ``kv_cache_bytes``: the memory a cache needs per token of context.
"""

import torch
import torch.nn.functional as F

from attnbook.efficient import causal_mask_end
from attnbook.multihead import expand_kv, kv_cache_numbers, merge_heads, split_heads
from attnbook.shapes import check_positive_int, check_tensor
from attnbook.transformer import TransformerLM, check_tokens


class KVCache:
    """Keys and values of the positions read so far, one (k, v) pair per layer, each of
    shape (B, g, S, d_h). ``length`` is S, the number of positions held."""

    def __init__(self, num_layers: int):
        check_positive_int(num_layers, "num_layers")
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[-2]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Add k, v (B, g, t, d_h) of t new positions to ``layer``'s cache; return the
        whole cache of that layer, (B, g, S + t, d_h) each."""
        if isinstance(layer, bool) or not isinstance(layer, int) \
                or not 0 <= layer < len(self.keys):
            raise ValueError(f"layer should be an int in 0 .. {len(self.keys) - 1}, "
                             f"got {layer!r}")
        for x, name in ((k, "k"), (v, "v")):
            check_tensor(x, name, "float")
            if x.dim() != 4:
                raise ValueError(f"{name} should have shape (B, g, t, d_h), got shape "
                                 f"{tuple(x.shape)}")
        if k.shape != v.shape:
            raise ValueError(f"k and v should have the same shape (B, g, t, d_h), got "
                             f"{tuple(k.shape)} and {tuple(v.shape)}")
        old_k, old_v = self.keys[layer], self.values[layer]
        if old_k is not None:
            if (k.shape[:2], k.shape[3]) != (old_k.shape[:2], old_k.shape[3]):
                B, g, _, d_h = old_k.shape
                raise ValueError(f"the cache of layer {layer} holds shape {tuple(old_k.shape)} "
                                 f"= (B, g, S, d_h); k should have shape (B, g, t, d_h) = "
                                 f"({B}, {g}, t, {d_h}), got {tuple(k.shape)}")
            k, v = torch.cat([old_k, k], dim=2), torch.cat([old_v, v], dim=2)  # along S
        self.keys[layer], self.values[layer] = k, v
        return k, v

    def numbers(self) -> int:
        """How many numbers the cache holds (keys and values of every layer)."""
        return sum(x.numel() for x in self.keys + self.values if x is not None)


def _attend(layer, y: torch.Tensor, cache: KVCache, index: int) -> torch.Tensor:
    """The self-attention of one ``EncoderLayer`` for t new positions y (B, t, d)."""
    attn = layer.self_attn
    q = split_heads(attn.W_q(y), attn.num_heads)  # (B, h, t, d_h)
    k = split_heads(attn.W_k(y), attn.num_kv_heads)  # (B, g, t, d_h)
    v = split_heads(attn.W_v(y), attn.num_kv_heads)
    k, v = cache.append(index, k, v)  # (B, g, S, d_h): the old positions and the new
    k, v = expand_kv(k, attn.num_heads), expand_kv(v, attn.num_heads)  # (B, h, S, d_h)
    mask = causal_mask_end(q.shape[2], k.shape[2], y.device)  # the new t are the last t
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, t, d_h)
    return layer.dropout1(attn.W_o(merge_heads(context)))  # (B, t, d)


def lm_forward_cached(model: TransformerLM, tokens: torch.Tensor, cache: KVCache
                      ) -> torch.Tensor:
    """Logits (B, t, V) for t new tokens (B, t) that follow the ``cache.length`` tokens
    already in ``cache``; their keys and values are appended to it."""
    if not isinstance(model, TransformerLM):
        raise TypeError(f"model should be a TransformerLM, got {type(model).__name__}")
    if not isinstance(cache, KVCache):
        raise TypeError(f"cache should be a KVCache, got {type(cache).__name__}")
    if len(cache.keys) != len(model.blocks.layers):
        raise ValueError(f"cache has {len(cache.keys)} layers, the model "
                         f"{len(model.blocks.layers)}: build it with KVCache(num_layers)")
    start, max_len = cache.length, model.cfg.max_len
    check_tokens(tokens, model.cfg.vocab_size, max_len)
    if tokens.shape[1] == 0:
        raise ValueError("tokens should hold at least one new token, got shape (B, 0)")
    if start + tokens.shape[1] > max_len:
        room = (f"only {max_len - start} more fit" if start < max_len
                else "the cache is full")
        raise ValueError(f"the cache holds {start} positions and tokens adds "
                         f"{tokens.shape[1]}: {start + tokens.shape[1]} in all, but the "
                         f"model's positional table has max_len = {max_len} ({room})")
    if cache.keys[0] is not None and cache.keys[0].shape[0] != tokens.shape[0]:
        raise ValueError(f"tokens has B = {tokens.shape[0]} rows, the cache "
                         f"{cache.keys[0].shape[0]}")
    emb = model.embed
    x = emb.tokens(tokens) * emb.scale + emb.positions[start:start + tokens.shape[1]]
    x = emb.dropout(x)  # (B, t, d): positions continue where the cache ends
    for index, layer in enumerate(model.blocks.layers):
        if layer.norm_first:  # pre-LN: x + F(LN(x))
            x = x + _attend(layer, layer.norm1(x), cache, index)
            x = x + layer.dropout2(layer.ff(layer.norm2(x)))
        else:  # post-LN: LN(x + F(x))
            x = layer.norm1(x + _attend(layer, x, cache, index))
            x = layer.norm2(x + layer.dropout2(layer.ff(x)))
    return model.out(model.blocks.norm(x))  # (B, t, V)


@torch.no_grad()
def greedy_generate(model: TransformerLM, prompt: torch.Tensor, num_tokens: int,
                    use_cache: bool = True) -> torch.Tensor:
    """Prompt (B, P) followed by ``num_tokens`` greedy tokens: (B, P + num_tokens).
    Without the cache every step runs the model on the whole sequence so far."""
    if not isinstance(model, TransformerLM):
        raise TypeError(f"model should be a TransformerLM, got {type(model).__name__}")
    check_positive_int(num_tokens, "num_tokens")
    if not isinstance(use_cache, bool):
        raise TypeError(f"use_cache should be True or False, got {use_cache!r}")
    check_tokens(prompt, model.cfg.vocab_size, model.cfg.max_len, "prompt")
    if prompt.shape[1] == 0 or prompt.shape[1] + num_tokens > model.cfg.max_len:
        raise ValueError(f"prompt length {prompt.shape[1]} + num_tokens {num_tokens} should "
                         f"lie in 1 .. max_len = {model.cfg.max_len}")
    tokens, cache, new = prompt, KVCache(len(model.blocks.layers)), prompt
    for _ in range(num_tokens):
        if use_cache:
            logits = lm_forward_cached(model, new, cache)  # only the new tokens
        else:
            logits, _ = model(tokens)  # the whole sequence, every step
        new = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        tokens = torch.cat([tokens, new], dim=1)
    return tokens


def kv_cache_bytes(num_layers: int, num_kv_heads: int, d_head: int,
                   bytes_per_number: int = 2) -> int:
    """Bytes of cache per token of context: a key and a value of d_head numbers for each
    key/value head of each layer (2 bytes a number in 16-bit precision)."""
    check_positive_int(bytes_per_number, "bytes_per_number")
    return kv_cache_numbers(num_layers, num_kv_heads, d_head) * bytes_per_number

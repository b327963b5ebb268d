"""Linear attention (Katharopoulos et al. 2020), as taught in chapter 11.

Replace exp(q . k) by phi(q) . phi(k) with a positive feature map phi (here
elu(x) + 1). Then sum_j phi(q) . phi(k_j) v_j = phi(q)^T (sum_j phi(k_j) v_j^T): the
keys and values are summed once into a (d_k, d_v) matrix, whatever the length, and
the cost grows like T instead of T^2. Causal, the sums run over the past: an RNN whose
state is that matrix and the normaliser z = sum_j phi(k_j).

Shapes (``book/notation.md``): q (..., T, d_k), k (..., S, d_k), v (..., S, d_v).

- ``elu_feature_map``: phi(x) = elu(x) + 1 > 0;
- ``linear_attention``: all keys (``causal=False``) or, causal, the running sums by
  cumulative sums over positions;
- ``linear_attention_recurrent``: the causal version as an RNN, one position a step;
- ``RecallModel``: one attention layer reading pairs and answering a query, with
  softmax or linear attention and otherwise the same parameters.
"""

import torch
import torch.nn.functional as F
from torch import nn

from attnbook.efficient import _check_qkv
from attnbook.shapes import check_module_input, check_positive_int, check_shape, check_tensor


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """phi(x) = elu(x) + 1: positive, so phi(q) . phi(k) > 0 acts as an unnormalised weight."""
    check_tensor(x, "x", "float")
    return F.elu(x) + 1


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     causal: bool = False) -> torch.Tensor:
    """phi(q)^T sum_j phi(k_j) v_j^T / phi(q)^T sum_j phi(k_j): (..., T, d_v).
    ``causal``: query i sums over keys 0 .. i only (needs T = S)."""
    _check_qkv(q, k, v)
    if not isinstance(causal, bool):
        raise TypeError(f"causal should be True or False, got {causal!r}")
    fq, fk = elu_feature_map(q), elu_feature_map(k)
    if not causal:
        state = fk.transpose(-2, -1) @ v  # (..., d_k, S) @ (..., S, d_v) -> (..., d_k, d_v)
        z = fk.sum(-2)  # (..., d_k)
        return (fq @ state) / (fq @ z.unsqueeze(-1))  # (..., T, d_v) / (..., T, 1)
    if q.shape[-2] != k.shape[-2]:
        raise ValueError(f"causal linear attention needs T = S, got q {tuple(q.shape)} "
                         f"and k {tuple(k.shape)}")
    states = (fk.unsqueeze(-1) * v.unsqueeze(-2)).cumsum(-3)  # (..., T, d_k, d_v)
    zs = fk.cumsum(-2)  # (..., T, d_k)
    num = (fq.unsqueeze(-2) @ states).squeeze(-2)  # (..., T, d_v)
    return num / (fq * zs).sum(-1, keepdim=True)


def linear_attention_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                               ) -> torch.Tensor:
    """Causal linear attention as an RNN: state S_t = S_{t-1} + phi(k_t) v_t^T,
    z_t = z_{t-1} + phi(k_t), output phi(q_t)^T S_t / phi(q_t)^T z_t. (..., T, d_v)."""
    _check_qkv(q, k, v)
    if q.shape[-2] != k.shape[-2]:
        raise ValueError(f"the recurrence reads one key per query: T = S needed, got q "
                         f"{tuple(q.shape)} and k {tuple(k.shape)}")
    fq, fk = elu_feature_map(q), elu_feature_map(k)
    state = q.new_zeros(*q.shape[:-2], q.shape[-1], v.shape[-1])  # (..., d_k, d_v)
    z = q.new_zeros(*q.shape[:-2], q.shape[-1])  # (..., d_k)
    out = []
    for t in range(q.shape[-2]):
        state = state + fk[..., t, :, None] * v[..., t, None, :]  # outer product
        z = z + fk[..., t, :]
        num = (fq[..., t, None, :] @ state).squeeze(-2)  # (..., d_v)
        out.append(num / (fq[..., t, :] * z).sum(-1, keepdim=True))
    return torch.stack(out, -2)  # (..., T, d_v)


class RecallModel(nn.Module):
    """Associative recall with one attention layer. Each pair (key, value) is one
    position, embedded as e_key + e_value; the query key comes last, with a blank value.
    The query attends to all P + 1 positions (``kind`` "softmax" or "linear", the same
    parameters either way), and a small MLP reads the value from the result."""

    def __init__(self, num_keys: int = 64, num_values: int = 16, d_model: int = 32,
                 kind: str = "softmax"):
        super().__init__()
        check_positive_int(num_keys, "num_keys")
        check_positive_int(num_values, "num_values")
        check_positive_int(d_model, "d_model")
        if kind not in ("softmax", "linear"):
            raise ValueError(f"kind should be 'softmax' or 'linear', got {kind!r}")
        self.kind, self.num_keys, self.num_values = kind, num_keys, num_values
        self.key_embed = nn.Embedding(num_keys, d_model)
        self.value_embed = nn.Embedding(num_values + 1, d_model)  # the last: blank
        self.W_q, self.W_k = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.W_v, self.W_o = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.readout = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, 2 * d_model),
                                     nn.ReLU(), nn.Linear(2 * d_model, num_values))

    def _check(self, keys, values, query) -> None:
        for x, name, n in ((keys, "keys", self.num_keys), (values, "values", self.num_values),
                           (query, "query", self.num_keys)):
            check_tensor(x, name, "int")
            if x.numel() and (x.min() < 0 or x.max() >= n):
                raise ValueError(f"{name} should hold ids in 0 .. {n - 1}, got min "
                                 f"{int(x.min())}, max {int(x.max())}")
        dims = check_shape(keys, ("B", "P"), "keys")
        check_shape(values, ("B", "P"), "values", dims)
        check_shape(query, ("B",), "query", dims)
        if keys.shape[1] == 0:
            raise ValueError("keys should hold at least one pair, got shape (B, 0)")

    def forward(self, keys: torch.Tensor, values: torch.Tensor, query: torch.Tensor
                ) -> torch.Tensor:
        """keys, values (B, P), query (B,) -> logits over the values (B, num_values)."""
        self._check(keys, values, query)
        blank = self.value_embed.weight[self.num_values]  # (d,)
        x_q = self.key_embed(query)[:, None] + blank  # (B, 1, d)
        x = torch.cat([self.key_embed(keys) + self.value_embed(values), x_q], 1)  # (B, P+1, d)
        check_module_input(x, "x", self, self.W_k.in_features, "d_model")
        q, k, v = self.W_q(x_q), self.W_k(x), self.W_v(x)  # (B, 1, d), (B, P+1, d) x2
        if self.kind == "softmax":
            context = F.scaled_dot_product_attention(q, k, v)  # (B, 1, d)
        else:
            context = linear_attention(q, k, v)  # (B, 1, d)
        return self.readout(self.W_o(context)[:, 0] + x_q[:, 0])  # (B, num_values)

"""Reading a trained model's attention (chapter 12): which input positions mattered?

Shapes (``book/notation.md``): B batch, L layers, h heads, T positions; attention maps
(B, L, h, T, T) with rows that sum to 1 (queries) over columns (keys).

- ``attention_rollout`` (Abnar & Zuidema 2020): each layer's map averaged over heads,
  with the residual connection as the identity, A' = (A + I) / 2, multiplied through
  the layers: R = A'_L ... A'_1 (B, T, T). Row i: how much of output i flows from each
  input position.
- ``attention_flow``: the same graph read as a flow network (capacities A'), the value
  of the maximum flow from one output position to each input position (networkx).
- ``leave_one_out``: the occlusion reference for a ``ClsEncoder`` -- the drop in the
  probability of the predicted class when one position is removed from every layer.
- ``gradient_x_input``: the gradient of the predicted class's log-probability with
  respect to each token embedding, dotted with that embedding (Shrikumar et al. 2016).
- ``rank_agreement``: Spearman's rank correlation of two importance maps, per example.
"""

import networkx as nx
import numpy as np
import torch
from scipy.stats import spearmanr

from attnbook.cls_encoder import ClsEncoder
from attnbook.shapes import check_not_nan, check_positive_int, check_shape, check_tensor


def _check_maps(weights) -> dict:
    check_tensor(weights, "weights", "float")
    dims = check_shape(weights, ("B", "L", "h", "T", "T"), "weights")
    check_not_nan(weights, "weights")
    if weights.numel() and ((weights < 0).any() or weights.sum(-1).sub(1).abs().max() > 1e-3):
        raise ValueError("weights should be attention maps: entries >= 0 and each row "
                         "(over the last axis) summing to 1")
    return dims


def residual_maps(weights: torch.Tensor) -> torch.Tensor:
    """(B, L, h, T, T) -> (B, L, T, T): per layer the mean over heads, plus the
    residual connection as the identity, rows re-normalised: (A + I) / 2."""
    _check_maps(weights)
    A = weights.mean(2)  # (B, L, T, T)
    eye = torch.eye(A.shape[-1], dtype=A.dtype)
    return (A + eye) / 2  # each row sums to (1 + 1) / 2 = 1


def attention_rollout(weights: torch.Tensor) -> torch.Tensor:
    """(B, L, h, T, T) -> (B, T, T): R = A'_L @ ... @ A'_1 with A' = (A + I) / 2."""
    maps = residual_maps(weights)  # (B, L, T, T)
    R = maps[:, 0]
    for layer in range(1, maps.shape[1]):
        R = maps[:, layer] @ R  # (B, T, T) @ (B, T, T): one more layer on top
    return R


def _flow_graph(maps: np.ndarray) -> nx.DiGraph:
    """Nodes (layer, position); an edge from (l+1, i) to (l, j) of capacity A'_l[i, j]."""
    G = nx.DiGraph()
    L, T, _ = maps.shape
    for layer in range(L):
        for i in range(T):
            for j in range(T):
                if maps[layer, i, j] > 0:
                    G.add_edge((layer + 1, i), (layer, j), capacity=float(maps[layer, i, j]))
    return G


def attention_flow(weights: torch.Tensor, query: int = 0) -> torch.Tensor:
    """(B, L, h, T, T) -> (B, T): the maximum flow from output position ``query`` at
    the top layer to each input position, through capacities A' = (A + I) / 2."""
    dims = _check_maps(weights)
    check_positive_int(query, "query", minimum=0)
    if query >= dims["T"]:
        raise ValueError(f"query should be a position 0 .. {dims['T'] - 1}, got {query}")
    maps = residual_maps(weights).detach().double().numpy()  # (B, L, T, T)
    B, L, T = maps.shape[0], maps.shape[1], maps.shape[-1]
    flow = torch.zeros(B, T, dtype=weights.dtype)
    for b in range(B):
        G = _flow_graph(maps[b])
        for j in range(T):
            flow[b, j] = nx.maximum_flow_value(G, (L, query), (0, j))
    return flow


def _check_model_tokens(model, tokens) -> None:
    if not isinstance(model, ClsEncoder):
        raise TypeError(f"model should be a ClsEncoder, got {type(model).__name__}")
    check_tensor(tokens, "tokens", "int")
    check_shape(tokens, ("B", "T"), "tokens")
    if tokens.numel() == 0:
        raise ValueError(f"tokens should hold at least one sequence of at least one token, "
                         f"got shape {tuple(tokens.shape)}")


def leave_one_out(model: ClsEncoder, tokens: torch.Tensor) -> torch.Tensor:
    """tokens (B, T) -> importance (B, T): p(y | x) - p(y | x without position j), where
    y is the class the model predicts for the whole input x."""
    _check_model_tokens(model, tokens)
    B, T = tokens.shape
    with torch.no_grad():
        probs = model(tokens)[0].softmax(-1)  # (B, C)
        y = probs.argmax(-1)  # (B,)
        keep = ~torch.eye(T, dtype=torch.bool).expand(B, T, T)  # (B, j, T): drop j
        rows = tokens.repeat_interleave(T, 0)  # (B T, T)
        occluded = model(rows, keep.reshape(B * T, T))[0].softmax(-1)  # (B T, C)
        p_without = occluded.reshape(B, T, -1).gather(2, y[:, None, None].expand(B, T, 1))
    return probs.gather(1, y[:, None]) - p_without.squeeze(-1)  # (B, T)


def gradient_x_input(model: ClsEncoder, tokens: torch.Tensor) -> torch.Tensor:
    """tokens (B, T) -> (B, T): sum over d of (d log p(y) / d x_j) * x_j, with x the
    token embeddings and y the predicted class."""
    _check_model_tokens(model, tokens)
    x = model.embed(tokens).detach().requires_grad_(True)  # (B, T, d)
    log_p = model.classify(x)[0].log_softmax(-1)  # (B, C)
    y = log_p.argmax(-1)
    (grad,) = torch.autograd.grad(log_p.gather(1, y[:, None]).sum(), x)
    return (grad * x).sum(-1).detach()  # (B, T)


def rank_agreement(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a, b (B, T) importance maps -> (B,): Spearman's rank correlation of each row
    (nan where a row is constant, as it has no ranking)."""
    for x, name in ((a, "a"), (b, "b")):
        check_tensor(x, name, "float")
        check_not_nan(x, name)
    dims = check_shape(a, ("B", "T"), "a")
    check_shape(b, ("B", "T"), "b", dims)
    if dims["T"] < 2:
        raise ValueError(f"a rank correlation needs at least 2 positions, got T = {dims['T']}")
    rho = []
    for x, y in zip(a.detach().double().numpy(), b.detach().double().numpy(), strict=True):
        constant = np.ptp(x) == 0 or np.ptp(y) == 0
        rho.append(float("nan") if constant else spearmanr(x, y).statistic)
    return torch.tensor(rho, dtype=torch.float64)

"""The graph of chapter 10: a stochastic block model with noisy node features.

``num_nodes`` nodes fall into ``num_communities`` communities (the labels). Most nodes
are *regular*: their features are their community's one-hot vector times ``signal``
plus Gaussian noise, and they link to nodes of their own community with probability
``p_in`` and to other communities with ``p_out``. A fraction ``bridge_fraction`` of
the nodes are *bridges*: they link to any node at all with probability ``p_bridge``, so
most edges between communities touch a bridge, and their features look like those of a
member of another community (a random one). The last feature column says what kind of
node it is: 1 for a bridge, 0 for a regular node.

Edges are undirected: ``adj`` (N, N) is symmetric, True where two nodes are linked,
with no self-loops (a layer adds them). ``train_mask`` and ``test_mask`` split the
nodes: the model sees every node's features and edges, but only the training labels.
"""

from dataclasses import dataclass

import torch

from attnbook.shapes import check_positive_int


@dataclass(frozen=True)
class Graph:
    """x (N, F) float, adj (N, N) bool symmetric, labels (N,) long, bridge (N,) bool,
    train_mask and test_mask (N,) bool."""

    x: torch.Tensor
    adj: torch.Tensor
    labels: torch.Tensor
    bridge: torch.Tensor
    train_mask: torch.Tensor
    test_mask: torch.Tensor


def _check_probability(p, name: str) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float):
        raise TypeError(f"{name} should be a number in [0, 1], got {type(p).__name__}")
    if not 0.0 <= p <= 1.0:  # also refuses nan
        raise ValueError(f"{name} should lie in [0, 1], got {p}")
    return float(p)


def make_sbm_graph(num_nodes: int = 400, num_communities: int = 4, p_in: float = 0.05,
                   p_out: float = 0.002, bridge_fraction: float = 0.2,
                   p_bridge: float = 0.03, signal: float = 1.0, noise: float = 1.0,
                   extra_features: int = 0, train_fraction: float = 0.5,
                   seed: int = 0) -> Graph:
    """A stochastic block model with bridges (see the module docstring); features have
    ``num_communities + extra_features + 1`` columns: the community signal, pure noise,
    and the bridge flag."""
    check_positive_int(num_nodes, "num_nodes", minimum=2)
    check_positive_int(num_communities, "num_communities", minimum=2)
    check_positive_int(extra_features, "extra_features", minimum=0)
    check_positive_int(seed, "seed", minimum=0)
    p_in, p_out, p_bridge = (_check_probability(p, n) for p, n in
                             ((p_in, "p_in"), (p_out, "p_out"), (p_bridge, "p_bridge")))
    bridge_fraction = _check_probability(bridge_fraction, "bridge_fraction")
    train_fraction = _check_probability(train_fraction, "train_fraction")
    for value, name in ((signal, "signal"), (noise, "noise")):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{name} should be a number, got {type(value).__name__}")
        if not 0.0 <= value < float("inf"):
            raise ValueError(f"{name} should be a finite number >= 0, got {value}")
    g = torch.Generator().manual_seed(seed)
    N, K = num_nodes, num_communities
    labels = torch.randint(K, (N,), generator=g)  # (N,)
    bridge = torch.rand(N, generator=g) < bridge_fraction  # (N,)
    same = labels[:, None] == labels[None, :]  # (N, N)
    p = torch.where(same, p_in, p_out)
    either = bridge[:, None] | bridge[None, :]
    p = torch.where(either, p_bridge, p)  # any edge touching a bridge: p_bridge
    upper = (torch.rand(N, N, generator=g) < p).triu(diagonal=1)
    adj = upper | upper.T  # (N, N) symmetric, no self-loops
    shift = torch.randint(1, K, (N,), generator=g)  # a bridge looks like another community
    looks_like = torch.where(bridge, (labels + shift) % K, labels)
    onehot = torch.nn.functional.one_hot(looks_like, K).float() * signal  # (N, K)
    x = torch.cat([onehot, torch.zeros(N, extra_features)], dim=1)
    x = x + noise * torch.randn(N, K + extra_features, generator=g)
    x = torch.cat([x, bridge.float()[:, None]], dim=1)  # (N, F): the flag last
    train_mask = torch.rand(N, generator=g) < train_fraction
    return Graph(x, adj, labels, bridge, train_mask, ~train_mask)

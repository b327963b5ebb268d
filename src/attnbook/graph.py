"""Graph attention (GAT, Velickovic et al. 2018) as taught in chapter 10.

A node attends to its neighbours and to itself: attention restricted by the adjacency
is chapter 4's masked softmax, with the mask ``adj | I``. Shapes (``book/notation.md``):
N nodes, F input features, F' output features per head, h heads. ``adj`` (N, N) is
boolean, ``adj[i, j]`` True when node i receives from node j (an undirected graph has a
symmetric ``adj``).

For head k, with W_k (F -> F') and the two halves a_dst, a_src of its attention vector,

    e_ij = LeakyReLU(a_dst . W_k x_i + a_src . W_k x_j),  alpha_i = softmax over j in N(i) + {i}
    out_i = sum_j alpha_ij W_k x_j,

and the heads are concatenated (or averaged). The score adds a term of i and a term of
j, so every node ranks its neighbours in the same order (Brody et al. call this static
attention): GAT can prefer *kinds* of neighbours, not neighbours that agree with it.

- ``GATLayer``: the layer; ``forward(x, adj)`` returns ``(out, weights (h, N, N))``;
- ``MeanLayer``: the baseline, every neighbour (and the node itself) weighted equally;
- ``GraphClassifier``: two such layers for node classification;
- ``copy_from_gatconv``: load ``torch_geometric.nn.GATConv``'s weights into a
  ``GATLayer``, which then computes the same function (chapter 10 checks it to 1e-5);
- ``edge_index_from_adj``: the (2, E) source/target list PyTorch Geometric uses.
"""

import torch
import torch.nn.functional as F
from torch import nn

from attnbook.attention import masked_softmax
from attnbook.shapes import check_positive_int, check_shape, check_tensor


def _check_graph(x: torch.Tensor, adj: torch.Tensor, in_features: int | None = None) -> None:
    """x (N, F) float and adj (N, N) bool with the same N, else a clear error."""
    check_tensor(x, "x", "float")
    check_tensor(adj, "adj", "bool")
    if x.dim() != 2:
        raise ValueError(f"x should have 2 dimensions (N, F), got shape {tuple(x.shape)}")
    if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(f"adj should be a square (N, N) adjacency matrix, got shape "
                         f"{tuple(adj.shape)}")
    dims = check_shape(x, ("N", "F"), "x")
    check_shape(adj, ("N", "N"), "adj", dims)
    if in_features is not None and x.shape[1] != in_features:
        raise ValueError(f"x has {x.shape[1]} features per node, but this layer was built "
                         f"for in_features={in_features}")
    if x.dtype != torch.float32:
        raise TypeError(f"x should be float32 like the layer's weights, got {x.dtype}; "
                        f"convert it with x.float()")


def edge_index_from_adj(adj: torch.Tensor) -> torch.Tensor:
    """(N, N) bool -> (2, E) long, rows (source j, target i) for every ``adj[i, j]``."""
    check_tensor(adj, "adj", "bool")
    if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(f"adj should be a square (N, N) adjacency matrix, got shape "
                         f"{tuple(adj.shape)}")
    target, source = adj.nonzero(as_tuple=True)
    return torch.stack([source, target])  # messages flow from j to i


class GATLayer(nn.Module):
    """One graph-attention layer: h heads of F' features, concatenated (h F') or averaged
    (F'). Self-loops are added to ``adj``; the layer returns the weights (h, N, N)."""

    def __init__(self, in_features: int, out_features: int, num_heads: int = 1,
                 concat: bool = True, negative_slope: float = 0.2):
        super().__init__()
        check_positive_int(in_features, "in_features")
        check_positive_int(out_features, "out_features")
        check_positive_int(num_heads, "num_heads")
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, int | float):
            raise TypeError(f"negative_slope should be a number, got "
                            f"{type(negative_slope).__name__}")
        if not 0.0 <= negative_slope <= 1.0:
            raise ValueError(f"negative_slope should lie in [0, 1], got {negative_slope}")
        self.in_features, self.out_features, self.num_heads = in_features, out_features, num_heads
        self.concat, self.negative_slope = concat, float(negative_slope)
        self.W = nn.Linear(in_features, num_heads * out_features, bias=False)
        self.a_src = nn.Parameter(torch.empty(num_heads, out_features))
        self.a_dst = nn.Parameter(torch.empty(num_heads, out_features))
        self.bias = nn.Parameter(torch.zeros(num_heads * out_features if concat
                                             else out_features))
        nn.init.xavier_uniform_(self.W.weight)
        nn.init.xavier_uniform_(self.a_src)
        nn.init.xavier_uniform_(self.a_dst)

    def forward(self, x: torch.Tensor, adj: torch.Tensor):
        """x (N, F), adj (N, N) bool -> out (N, h F') or (N, F'), weights (h, N, N)."""
        _check_graph(x, adj, self.in_features)
        N, h, Fo = x.shape[0], self.num_heads, self.out_features
        Wx = self.W(x).view(N, h, Fo)  # (N, h, F')
        dst = (Wx * self.a_dst).sum(-1)  # (N, h): the term of the receiving node i
        src = (Wx * self.a_src).sum(-1)  # (N, h): the term of the neighbour j
        scores = F.leaky_relu(dst.T[:, :, None] + src.T[:, None, :],
                              self.negative_slope)  # (h, N, N): e_ij
        mask = adj | torch.eye(N, dtype=torch.bool, device=adj.device)  # self-loops
        weights = masked_softmax(scores, mask=mask)  # (h, N, N), rows sum to 1
        out = weights @ Wx.transpose(0, 1)  # (h, N, N) @ (h, N, F') -> (h, N, F')
        out = out.transpose(0, 1).reshape(N, h * Fo) if self.concat else out.mean(0)
        return out + self.bias, weights


class MeanLayer(nn.Module):
    """The baseline: out_i = W mean of x_j over j in N(i) + {i}; weights (1, N, N) uniform."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        check_positive_int(in_features, "in_features")
        check_positive_int(out_features, "out_features")
        self.in_features = in_features
        self.W = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor, adj: torch.Tensor):
        """x (N, F), adj (N, N) bool -> out (N, F'), weights (1, N, N)."""
        _check_graph(x, adj, self.in_features)
        mask = adj | torch.eye(x.shape[0], dtype=torch.bool, device=adj.device)
        weights = mask.float() / mask.sum(1, keepdim=True)  # (N, N), rows sum to 1
        return self.W(weights @ x), weights[None]


class GraphClassifier(nn.Module):
    """Two graph layers with an ELU between: ``kind`` "gat" (h heads, concatenated, then
    one averaged output head) or "mean". ``forward`` -> logits (N, C), list of weights."""

    def __init__(self, in_features: int, hidden: int, num_classes: int, kind: str = "gat",
                 num_heads: int = 4):
        super().__init__()
        if kind not in ("gat", "mean"):
            raise ValueError(f"kind should be 'gat' or 'mean', got {kind!r}")
        for value, name in ((in_features, "in_features"), (hidden, "hidden"),
                            (num_classes, "num_classes"), (num_heads, "num_heads")):
            check_positive_int(value, name)
        if kind == "gat":
            self.layer1 = GATLayer(in_features, hidden, num_heads)
            self.layer2 = GATLayer(hidden * num_heads, num_classes, 1, concat=False)
        else:
            self.layer1 = MeanLayer(in_features, hidden * num_heads)
            self.layer2 = MeanLayer(hidden * num_heads, num_classes)

    def forward(self, x: torch.Tensor, adj: torch.Tensor):
        h, w1 = self.layer1(x, adj)  # (N, h F')
        logits, w2 = self.layer2(F.elu(h), adj)  # (N, C)
        return logits, [w1, w2]


def copy_from_gatconv(ours: GATLayer, theirs) -> GATLayer:
    """Copy a ``torch_geometric.nn.GATConv`` into ``ours``: ``lin.weight`` is W,
    ``att_src``/``att_dst`` (1, h, F') are a_src/a_dst, ``bias`` the bias. Both must
    have the same sizes, heads and ``concat``; ``theirs`` must add self-loops, share one
    projection for sources and targets and have no edge features. Returns ``ours``."""
    if not isinstance(ours, GATLayer):
        raise TypeError(f"ours should be a GATLayer, got {type(ours).__name__}")
    if type(theirs).__name__ != "GATConv" or not hasattr(theirs, "att_src"):
        raise TypeError(f"theirs should be a torch_geometric.nn.GATConv, got "
                        f"{type(theirs).__name__}")
    if getattr(theirs, "lin", None) is None or not theirs.add_self_loops \
            or theirs.lin_edge is not None or theirs.bias is None:
        raise ValueError("theirs should share one projection (an int in_channels), add "
                         "self-loops, have a bias and no edge features")
    mine = (ours.in_features, ours.out_features, ours.num_heads, ours.concat,
            ours.negative_slope)
    other = (theirs.in_channels, theirs.out_channels, theirs.heads, theirs.concat,
             theirs.negative_slope)
    if mine != other:
        raise ValueError(f"ours (in, out, heads, concat, slope) = {mine} but theirs = {other}")
    with torch.no_grad():
        ours.W.weight.copy_(theirs.lin.weight)
        ours.a_src.copy_(theirs.att_src[0])
        ours.a_dst.copy_(theirs.att_dst[0])
        ours.bias.copy_(theirs.bias)
    return ours

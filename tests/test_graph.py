"""attnbook.graph and attnbook.data.graphs (chapter 10): GAT equals GATConv."""

import pytest
import torch
from torch.testing import assert_close

from attnbook.attention import masked_softmax
from attnbook.data.graphs import make_sbm_graph
from attnbook.graph import (
    GATLayer,
    GraphClassifier,
    MeanLayer,
    copy_from_gatconv,
    edge_index_from_adj,
)

GATConv = pytest.importorskip("torch_geometric.nn").GATConv


@pytest.mark.parametrize("heads, concat", [(1, True), (3, True), (2, False)])
def test_gat_layer_equals_gatconv_after_copying_weights(heads, concat):
    g = make_sbm_graph(num_nodes=60, seed=1)
    torch.manual_seed(heads)
    theirs = GATConv(g.x.shape[1], 5, heads=heads, concat=concat)
    ours = copy_from_gatconv(GATLayer(g.x.shape[1], 5, heads, concat=concat), theirs)
    out, weights = ours(g.x, g.adj)
    expected, (edges, alpha) = theirs(g.x, edge_index_from_adj(g.adj),
                                      return_attention_weights=True)
    assert_close(out, expected, atol=1e-5, rtol=1e-5)
    # the same weights on every edge (edges: source j, target i -> weights[:, i, j])
    assert_close(weights[:, edges[1], edges[0]].T, alpha, atol=1e-5, rtol=1e-5)


def test_gat_weights_are_a_masked_softmax_over_neighbours_and_self():
    g = make_sbm_graph(num_nodes=30, seed=2)
    torch.manual_seed(0)
    layer = GATLayer(g.x.shape[1], 4, 2)
    _, weights = layer(g.x, g.adj)
    allowed = g.adj | torch.eye(30, dtype=torch.bool)
    assert (weights[:, ~allowed] == 0).all()
    assert_close(weights.sum(-1), torch.ones(2, 30))
    isolated = torch.zeros(3, 3, dtype=torch.bool)
    _, w = GATLayer(g.x.shape[1], 4)(g.x[:3], isolated)
    assert_close(w[0], torch.eye(3))  # no neighbours: a node hears only itself
    assert torch.equal(masked_softmax(torch.zeros(1, 3, 3), mask=allowed[:3, :3]) > 0,
                       allowed[:3, :3][None])


def test_mean_layer_weighs_neighbours_equally():
    adj = torch.tensor([[0, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=torch.bool)
    layer = MeanLayer(2, 2)
    _, w = layer(torch.randn(3, 2), adj)
    assert_close(w[0], torch.tensor([[1 / 3] * 3, [0.5, 0.5, 0], [0.5, 0, 0.5]]))


def test_sbm_graph_is_symmetric_seeded_and_mostly_within_communities():
    g = make_sbm_graph(seed=0)
    assert torch.equal(g.adj, g.adj.T) and not g.adj.diagonal().any()
    assert torch.equal(make_sbm_graph(seed=0).x, g.x)
    same = g.labels[:, None] == g.labels[None, :]
    regular = ~g.bridge[:, None] & ~g.bridge[None, :]
    assert (g.adj & regular & same).sum() > 5 * (g.adj & regular & ~same).sum()
    assert torch.equal(g.x[:, -1], g.bridge.float())  # the flag column
    assert not (g.train_mask & g.test_mask).any()


def test_classifier_shapes_and_bad_input():
    g = make_sbm_graph(num_nodes=40, seed=3)
    for kind in ("gat", "mean"):
        logits, weights = GraphClassifier(g.x.shape[1], 4, 4, kind=kind)(g.x, g.adj)
        assert logits.shape == (40, 4) and len(weights) == 2
    layer = GATLayer(g.x.shape[1], 4)
    with pytest.raises(ValueError, match="square"):
        layer(g.x, g.adj[:, :-1])
    with pytest.raises(TypeError, match="adj should hold booleans"):
        layer(g.x, g.adj.float())
    with pytest.raises(ValueError, match="in_features"):
        layer(g.x[:, :-1], g.adj)
    with pytest.raises(ValueError, match="heads, concat"):
        copy_from_gatconv(GATLayer(g.x.shape[1], 4, 2), GATConv(g.x.shape[1], 4, heads=3))

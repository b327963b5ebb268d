"""Checkers for chapter 10: patches of colour images, the pointer-network loss with
padding, the GAT neighbour softmax on a directed graph, and attention pooling of sets of
different sizes.

Shapes: images (B, C, H, W), patches (B, N, C p^2); pointer scores (B, T, n) over input
positions, targets (B, T), lengths (B,); GAT scores (h, N, N) and ``adj[i, j]`` True
when node i receives from node j; sets x (B, N, d) with a boolean ``valid`` (B, N).
"""

import torch

from attnbook.attention import masked_softmax
from attnbook.exercises.checker import Case, CheckResult, Mistake, check_function


def _randn(*shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# Exercise 1: patchify colour images, in the order a Conv2d patch embedding reads them ---


def patchify_channels_reference(images: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C p^2): patches in reading order; inside a patch the C
    channels one after another, each p x p in reading order (Conv2d's weight order)."""
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // p, p, W // p, p)  # split rows and columns
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, H/p, W/p, C, p, p)
    return x.reshape(B, (H // p) * (W // p), C * p * p)


def _patch_plain_reshape(images, p):
    B, C, H, W = images.shape
    return images.reshape(B, (H // p) * (W // p), C * p * p)


def _patch_channels_last(images, p):
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // p) * (W // p), C * p * p)  # (p, p, C): pixel-major


def _patch_column_order(images, p):
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // p, p, W // p, p).permute(0, 4, 2, 1, 3, 5)
    return x.reshape(B, (H // p) * (W // p), C * p * p)  # patches down the columns first


def _patch_pixels_by_column(images, p):
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 5, 3)
    return x.reshape(B, (H // p) * (W // p), C * p * p)  # each p x p block read down columns


PATCH_CASES = [
    Case((torch.arange(2 * 3 * 4 * 4.0).reshape(2, 3, 4, 4), 2),
         label="B=2, C=3, 4 x 4 pixels, p=2 (arange)"),
    Case((_randn(1, 2, 4, 6, seed=0), 2), label="a wide image, 4 x 6 pixels, p=2"),
    Case((_randn(2, 1, 6, 6, seed=1), 3), label="one channel, 6 x 6, p=3"),
    Case((_randn(1, 3, 4, 4, seed=2), 4), label="one patch covering the image (p=4)"),
    Case((_randn(1, 2, 2, 2, seed=3), 1), label="patches of one pixel (p=1)"),
]

PATCH_MISTAKES = [
    Mistake("reshape that mixes rows of different patches",
            "images.reshape(B, N, C*p*p) takes C*p*p consecutive numbers of memory: a stretch "
            "of one pixel row (and then the next channel), not a p x p square. Split H into "
            "(H/p, p) and W into (W/p, p) first, then permute the patch-grid axes in front.",
            wrong=_patch_plain_reshape),
    Mistake("channels last inside a patch",
            "the order (p, p, C) puts the channels of one pixel together; a Conv2d patch "
            "embedding's weight is (d, C, p, p), so each channel's p x p block comes whole, "
            "channel after channel: permute to (..., C, p, p).", wrong=_patch_channels_last),
    Mistake("patches in column order",
            "patches go in reading order: along the first row of patches, then the next row "
            "(index = row * W/p + column), so the patch-row axis comes before the patch-column "
            "axis.", wrong=_patch_column_order),
    Mistake("pixels of a patch read down the columns",
            "inside a patch each channel's p x p block is read like text, row after row, as "
            "Conv2d's weight (d, C, p, p) is laid out: keep the pixel-row axis before the "
            "pixel-column axis.", wrong=_patch_pixels_by_column),
]


def check_patchify_channels(fn) -> CheckResult:
    """``fn(images (B, C, H, W), p) -> (B, N, C p^2)``."""
    return check_function(fn, exercise="patchify colour images",
                          reference=patchify_channels_reference, cases=PATCH_CASES,
                          mistakes=PATCH_MISTAKES)


# Exercise 2: the pointer-network loss with sequences of different lengths -------------


def pointer_loss_padded_reference(scores: torch.Tensor, targets: torch.Tensor,
                                  lengths: torch.Tensor) -> torch.Tensor:
    """Mean over the real steps of -log p(target), the softmax taken over the real input
    positions only. scores (B, T, n), targets (B, T) (anything at padded steps),
    lengths (B,): sequence b has lengths[b] positions and lengths[b] steps."""
    B, T, n = scores.shape
    real_pos = torch.arange(n) < lengths[:, None]  # (B, n)
    log_p = torch.log_softmax(scores.masked_fill(~real_pos[:, None], float("-inf")), -1)
    real_step = torch.arange(T) < lengths[:, None]  # (B, T)
    safe = torch.where(real_step, targets, 0)
    nll = -log_p.gather(2, safe[..., None]).squeeze(-1)  # (B, T)
    return nll[real_step].mean()


def _loss_all_steps(scores, targets, lengths):
    B, T, n = scores.shape
    real_pos = torch.arange(n) < lengths[:, None]
    log_p = torch.log_softmax(scores.masked_fill(~real_pos[:, None], float("-inf")), -1)
    nll = -log_p.gather(2, targets.clamp(0, n - 1)[..., None]).squeeze(-1)
    nll = torch.where(torch.arange(T) < lengths[:, None], nll, torch.zeros(()))
    return nll.sum() / (B * T)  # padded steps count as zeros in the mean


def _loss_padding_in_softmax(scores, targets, lengths):
    B, T, n = scores.shape
    log_p = torch.log_softmax(scores, -1)
    real_step = torch.arange(T) < lengths[:, None]
    safe = torch.where(real_step, targets, 0)
    return -log_p.gather(2, safe[..., None]).squeeze(-1)[real_step].mean()


def _loss_summed(scores, targets, lengths):
    B, T, n = scores.shape
    real_step = torch.arange(T) < lengths[:, None]
    return pointer_loss_padded_reference(scores, targets, lengths) * real_step.sum()


def _loss_mean_of_means(scores, targets, lengths):
    B, T, n = scores.shape
    real_pos = torch.arange(n) < lengths[:, None]
    log_p = torch.log_softmax(scores.masked_fill(~real_pos[:, None], float("-inf")), -1)
    real_step = torch.arange(T) < lengths[:, None]
    nll = -log_p.gather(2, torch.where(real_step, targets, 0)[..., None]).squeeze(-1)
    return ((nll * real_step).sum(1) / lengths).mean()  # each sequence weighs the same


def _loss_softmax_over_steps(scores, targets, lengths):
    return pointer_loss_padded_reference(scores.transpose(1, 2), targets, lengths)


def _pointer_case(B, n, lengths, seed, scale=1.0):
    scores = _randn(B, n, n, seed=seed, scale=scale).requires_grad_()  # a loss to train with
    g = torch.Generator().manual_seed(seed + 1)
    targets = torch.stack([torch.cat([torch.randperm(int(m), generator=g),
                                      torch.full((n - int(m),), -1)]) for m in lengths])
    return Case((scores, targets, torch.tensor(lengths)), label=f"B={B}, n={n}, lengths "
                f"{lengths}" + (f", scores of size {scale:g}" if scale != 1 else ""))


POINTER_CASES = [
    _pointer_case(3, 5, [5, 3, 2], seed=0),
    _pointer_case(2, 4, [4, 4], seed=1),
    _pointer_case(2, 6, [1, 6], seed=2),
    _pointer_case(2, 5, [5, 2], seed=3, scale=300.0),
]

POINTER_MISTAKES = [
    Mistake("padded steps counted in the mean",
            "a padded step has no target: leave it out of the average (mean over the real "
            "steps), or short sequences weigh less than long ones.", wrong=_loss_all_steps),
    Mistake("padding positions left in the softmax",
            "the softmax must run over the real input positions only: fill the scores of "
            "padded positions with -inf before the log-softmax, or the model is charged for "
            "probability it gives to positions that do not exist.",
            wrong=_loss_padding_in_softmax),
    Mistake("softmax over the output steps",
            "a pointer's distribution is over the input positions, the last axis of "
            "scores (B, T, n); normalise along dim=-1.", wrong=_loss_softmax_over_steps),
    Mistake("summed instead of averaged",
            "the loss is the mean over the real steps: divide the sum by their number, or "
            "the loss (and the learning rate it needs) grows with the batch.",
            wrong=_loss_summed),
    Mistake("averaged per sequence, then over the batch",
            "every real step counts once: one mean over all real steps of the batch. A mean "
            "of per-sequence means gives a short sequence's steps more weight.",
            wrong=_loss_mean_of_means),
]


def check_pointer_loss_padded(fn) -> CheckResult:
    """``fn(scores (B, T, n), targets (B, T), lengths (B,)) -> scalar loss``."""
    return check_function(fn, exercise="pointer loss with padding",
                          reference=pointer_loss_padded_reference, cases=POINTER_CASES,
                          mistakes=POINTER_MISTAKES)


# Exercise 3: the GAT neighbour softmax on a directed graph ------------------------------


def gat_neighbour_softmax_reference(scores: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
    """scores (h, N, N) e_ij, adj (N, N) bool (i receives from j) -> weights (h, N, N):
    softmax over j in N(i) and i itself; 0 elsewhere."""
    mask = adj | torch.eye(adj.shape[0], dtype=torch.bool)  # every node hears itself
    return masked_softmax(scores, mask=mask)


def _gat_all_nodes(scores, adj):
    return torch.softmax(scores, -1)


def _gat_no_self_loop(scores, adj):
    return masked_softmax(scores, mask=adj)


def _gat_transposed(scores, adj):
    return masked_softmax(scores, mask=adj.T | torch.eye(adj.shape[0], dtype=torch.bool))


def _gat_zero_after(scores, adj):
    mask = adj | torch.eye(adj.shape[0], dtype=torch.bool)
    return torch.softmax(scores, -1) * mask


def _graph(N, edges):
    adj = torch.zeros(N, N, dtype=torch.bool)
    for i, j in edges:
        adj[i, j] = True
    return adj


GAT_CASES = [
    Case((_randn(2, 4, 4, seed=0), _graph(4, [(0, 1), (1, 0), (1, 2), (2, 3), (3, 1)])),
         label="2 heads, a directed graph of 4 nodes"),
    Case((_randn(1, 3, 3, seed=1), _graph(3, [(0, 1), (1, 0)])),
         label="node 2 has no neighbours"),
    Case((_randn(3, 5, 5, seed=2, scale=200.0),
          _graph(5, [(0, 4), (4, 0), (1, 2), (2, 1), (2, 3), (3, 0)])),
         label="scores of size 200, 5 nodes"),
    Case((_randn(1, 1, 1, seed=3), _graph(1, [])), label="a single node"),
]

GAT_MISTAKES = [
    Mistake("softmax over all nodes",
            "without the adjacency mask every node attends to the whole graph; GAT restricts "
            "node i to its neighbours: fill the scores of non-edges with -inf (or use "
            "masked_softmax) before normalising.", wrong=_gat_all_nodes),
    Mistake("no self-loop",
            "GAT adds a self-loop, so node i also attends to itself (and a node without "
            "neighbours still has something to attend to): use adj | I as the mask.",
            wrong=_gat_no_self_loop),
    Mistake("adjacency read the wrong way round",
            "adj[i, j] True means node i receives from node j, so row i of the mask is adj[i]; "
            "on a directed graph adj.T is a different graph.", wrong=_gat_transposed),
    Mistake("non-edges zeroed after the softmax",
            "zeroing weights after the softmax leaves rows that no longer sum to 1; mask "
            "the scores before normalising.", wrong=_gat_zero_after),
]


def check_gat_neighbour_softmax(fn) -> CheckResult:
    """``fn(scores (h, N, N), adj (N, N) bool) -> weights (h, N, N)``."""
    return check_function(fn, exercise="GAT neighbour softmax",
                          reference=gat_neighbour_softmax_reference, cases=GAT_CASES,
                          mistakes=GAT_MISTAKES)


# Exercise 4: attention pooling of sets of different sizes -------------------------------


def attention_pool_reference(x: torch.Tensor, seed: torch.Tensor,
                             valid: torch.Tensor) -> torch.Tensor:
    """x (B, N, d), seed (d,) query, valid (B, N) bool -> (B, d): the weighted mean of the
    valid elements, weights softmax(x . seed / sqrt(d)) over the valid elements."""
    d = x.shape[-1]
    scores = x @ seed / d**0.5  # (B, N)
    weights = masked_softmax(scores, mask=valid)  # (B, N), padding gets 0
    return (weights[..., None] * x).sum(1)  # (B, d)


def _pool_mean(x, seed, valid):
    return (x * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)


def _pool_unscaled(x, seed, valid):
    return attention_pool_reference(x, seed * x.shape[-1] ** 0.5, valid)


def _pool_unmasked(x, seed, valid):
    return attention_pool_reference(x, seed, torch.ones_like(valid))


def _pool_feature_softmax(x, seed, valid):
    w = torch.softmax(x * seed / x.shape[-1] ** 0.5, -1)  # over the features
    return (w * x * valid[..., None]).sum(1)


POOL_CASES = [
    Case((_randn(2, 5, 4, seed=0), _randn(4, seed=1),
          torch.tensor([[True] * 5, [True, True, True, False, False]])),
         label="B=2, N=5, d=4, the second set has 3 elements"),
    Case((_randn(3, 4, 9, seed=2), _randn(9, seed=3),
          torch.tensor([[True] * 4, [True, False, False, False], [True, True, False, False]])),
         label="sets of 4, 1 and 2 elements, d=9"),
    Case((_randn(1, 6, 16, seed=4, scale=90.0), _randn(16, seed=5),
          torch.ones(1, 6, dtype=torch.bool)), label="large features (90), d=16"),
    Case((_randn(2, 1, 3, seed=6), _randn(3, seed=7), torch.ones(2, 1, dtype=torch.bool)),
         label="sets of one element"),
]

POOL_MISTAKES = [
    Mistake("mean pooling",
            "the average of the valid elements ignores the seed: pooling by attention scores "
            "every element against the seed and takes the softmax-weighted mean.",
            wrong=_pool_mean),
    Mistake("no 1/sqrt(d) scaling",
            "divide the scores x . seed by sqrt(d), as in scaled dot-product attention.",
            wrong=_pool_unscaled),
    Mistake("padding not masked",
            "padded elements are not part of the set: give them weight 0 with the valid mask "
            "(masked_softmax(scores, mask=valid)).", wrong=_pool_unmasked),
    Mistake("softmax over the features",
            "the weights are over the elements of the set (dim 1 of x), one weight per "
            "element, not over the d features.", wrong=_pool_feature_softmax),
]


def check_attention_pool(fn) -> CheckResult:
    """``fn(x (B, N, d), seed (d,), valid (B, N) bool) -> (B, d)``."""
    return check_function(fn, exercise="attention pooling", reference=attention_pool_reference,
                          cases=POOL_CASES, mistakes=POOL_MISTAKES)


__all__ = ["check_patchify_channels", "check_pointer_loss_padded",
           "check_gat_neighbour_softmax", "check_attention_pool",
           "patchify_channels_reference", "pointer_loss_padded_reference",
           "gat_neighbour_softmax_reference", "attention_pool_reference"]

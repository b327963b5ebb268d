"""Chapter 10's checkers, beyond the generic tests in test_exercises.py (every reference passes,
every named mistake is caught, stubs are "not attempted yet")."""

import torch

from attnbook.attention import masked_softmax
from attnbook.exercises import ch10


def test_other_correct_forms_pass():
    def patchify_unfold(images, p):  # unfold gives (B, C p^2, N) in Conv2d order
        return torch.nn.functional.unfold(images, p, stride=p).transpose(1, 2)

    assert ch10.check_patchify_channels(patchify_unfold)

    def loss_by_cross_entropy(scores, targets, lengths):
        n = scores.shape[-1]
        real_pos = torch.arange(n) < lengths[:, None]
        scores = scores.masked_fill(~real_pos[:, None], float("-inf"))
        t = torch.where(torch.arange(targets.shape[1]) < lengths[:, None], targets, -100)
        return torch.nn.functional.cross_entropy(scores.flatten(0, 1), t.flatten(),
                                                 ignore_index=-100)

    assert ch10.check_pointer_loss_padded(loss_by_cross_entropy)

    def gat_with_minus_inf(scores, adj):
        mask = adj | torch.eye(adj.shape[0], dtype=torch.bool)
        return scores.masked_fill(~mask, float("-inf")).softmax(-1)

    assert ch10.check_gat_neighbour_softmax(gat_with_minus_inf)

    def pool_by_sdpa(x, seed, valid):
        q = seed.expand(x.shape[0], 1, -1)
        return torch.nn.functional.scaled_dot_product_attention(
            q, x, x, attn_mask=valid[:, None]).squeeze(1)

    assert ch10.check_attention_pool(pool_by_sdpa)


def test_the_gat_reference_is_a_masked_softmax_with_self_loops():
    scores, adj = torch.randn(2, 3, 3), torch.zeros(3, 3, dtype=torch.bool)
    w = ch10.gat_neighbour_softmax_reference(scores, adj)
    torch.testing.assert_close(w, torch.eye(3).expand(2, 3, 3))  # only itself to hear
    assert torch.equal(w, masked_softmax(scores, mask=torch.eye(3, dtype=torch.bool)))

"""Chapter 12's checkers, beyond the generic tests in test_exercises.py (every reference
passes, every named mistake is caught, stubs are "not attempted yet")."""

import torch

from attnbook.exercises import ch12
from attnbook.faithfulness import js_distance
from attnbook.interpret import attention_rollout


def test_other_correct_forms_pass():
    def rollout_by_multi_dot(weights, residual):
        T = weights.shape[-1]
        eye = torch.eye(T)
        layers = [(w.mean(0) + r * eye) / (1 + r) for w, r in zip(weights, residual,
                                                                  strict=True)]
        return torch.linalg.multi_dot([*layers[::-1], eye])

    assert ch12.check_rollout_residual(rollout_by_multi_dot)

    def occlusion_batched(model, tokens, labels, filler):
        B, T = tokens.shape
        occluded = tokens.repeat_interleave(T, 0)  # (B T, T): row b*T + j hides j
        occluded[torch.arange(B * T), torch.arange(T).repeat(B)] = filler
        with torch.no_grad():
            base = model(tokens).log_softmax(-1).gather(1, labels[:, None])  # (B, 1)
            lp = model(occluded).log_softmax(-1).reshape(B, T, -1)
            return base - lp.gather(2, labels[:, None, None].expand(B, T, 1)).squeeze(-1)

    assert ch12.check_occlusion(occlusion_batched)

    def js_by_xlogy(p, q):
        m = (p + q) / 2
        kl = (torch.xlogy(p, p) - torch.xlogy(p, m) + torch.xlogy(q, q)
              - torch.xlogy(q, m)).sum(-1)
        return (kl / 2 / torch.log(torch.tensor(2.0))).clamp(min=0).sqrt()

    assert ch12.check_js_distance(js_by_xlogy)
    assert ch12.check_js_distance(js_distance)  # the package's, used in the chapter


def test_rollout_with_equal_shares_is_the_chapters_rollout():
    w = torch.randn(3, 2, 5, 5).softmax(-1)
    torch.testing.assert_close(ch12.rollout_residual_reference(w, torch.ones(3)),
                               attention_rollout(w[None])[0])

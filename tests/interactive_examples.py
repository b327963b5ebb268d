"""Every interactive figure built on small seeded inputs, for the unit and browser tests.

The figures of chapters 6, 8, 9, 10 and 12 take a trained model's arrays; here they get
random arrays of the same shapes (attention rows that sum to 1), which is all they use.
"""

import torch

from attnbook import interactive


def _rows(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(*shape, generator=g) * 2, dim=-1)


def trained_inputs() -> dict:
    g = torch.Generator().manual_seed(1)
    return {
        "alignment_figure": dict(weights=_rows(4, 5), source=["le", "chat", "est", "noir", "."],
                                 target=["the", "cat", "is", "black"],
                                 gold=torch.tensor([0, 1, 2, 3])),
        "head_figure": dict(weights=_rows(4, 6, 6), accuracy_without=torch.tensor(
            [0.97, 0.52, 0.95, 0.98]), accuracy=0.98, tokens=list("abcabc")),
        "sampling_figure": dict(logits=torch.randn(20, generator=g) * 2,
                                vocabulary=list("abcdefghijklmnopqrs ")),
        "vit_figure": dict(cls_weights=_rows(3, 2, 16).reshape(3, 2, 4, 4),
                           image=torch.rand(8, 8, generator=g)),
        "rollout_figure": dict(weights=_rows(3, 2, 6, 6), tokens=["[CLS]", "a", "b", "c", "d",
                                                                  "e"],
                               occlusion=torch.randn(6, generator=g)),
    }


def all_figures() -> dict:
    """name -> InteractiveFigure, every builder of attnbook.interactive."""
    inputs = trained_inputs()
    return {name: getattr(interactive, name)(**inputs.get(name, {}))
            for name in interactive.__all__ if name.endswith("_figure")}

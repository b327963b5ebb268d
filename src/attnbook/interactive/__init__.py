"""Interactive figures: controls the reader moves, in JupyterLab, Colab and the HTML book.

One call per figure, from the chapter that teaches the idea; each returns an
``InteractiveFigure`` that a notebook cell displays (its last line)::

    from attnbook.interactive import temperature_figure
    temperature_figure(scores)

The data come from the package's own functions (``attnbook.softmax`` and the others),
computed at every setting of the controls; ``figure.expected(settings)`` says what the
figure must show at a setting, and the tests check the live figure against it.

- ``attnbook.interactive.figure``       -- ``InteractiveFigure``, controls, the mime bundle
- ``attnbook.interactive.foundations``  -- chapters 1-4: scores, temperature, bandwidth, masks
- ``attnbook.interactive.mechanisms``   -- chapters 5, 7, 11: local-p, RoPE, online softmax
- ``attnbook.interactive.trained``      -- chapters 6, 8, 9, 10, 12: from a trained model's
                                           arrays (alignment, heads, sampling, ViT, rollout)
- ``attnbook.interactive.book``         -- the MyST-NB renderer and Sphinx extension that put
                                           the figures in the HTML book with the vendored Vega
"""

from attnbook.interactive.figure import InteractiveFigure
from attnbook.interactive.foundations import (
                                              bandwidth_figure,
                                              mask_figure,
                                              query_scores_figure,
                                              temperature_figure,
)
from attnbook.interactive.mechanisms import local_p_figure, online_softmax_figure, rope_figure
from attnbook.interactive.trained import (
                                              alignment_figure,
                                              head_figure,
                                              rollout_figure,
                                              sampling_figure,
                                              vit_figure,
)

__all__ = ["InteractiveFigure", "alignment_figure", "bandwidth_figure", "head_figure",
           "local_p_figure", "mask_figure", "online_softmax_figure", "query_scores_figure",
           "rollout_figure", "rope_figure", "sampling_figure", "temperature_figure",
           "vit_figure"]

"""Companion package of the book *Attention, Step by Step*.

Each chapter teaches an idea in its notebook; when a later chapter needs it, it
imports the version kept here. The modules, one idea each:

- ``attnbook.env``              -- ``set_seed``, ``get_device``
- ``attnbook.shapes``           -- ``check_shape``, ``check_float``: clear errors for bad input
- ``attnbook.plotting``         -- ``show_heatmaps`` for attention weights
- ``attnbook.train``            -- ``train_steps``: a small loop with a progress bar and history
- ``attnbook.similarity``       -- chapter 1: dot products, cosine similarity, score matrices
- ``attnbook.softmax``          -- chapter 2: stable softmax, log-softmax, entropy
- ``attnbook.kernel_regression``-- chapter 3: Nadaraya–Watson regression, LOO-CV bandwidth
- ``attnbook.attention``        -- chapter 4: score functions, masks, scaled dot-product attention
- ``attnbook.hard_attention``   -- chapter 5: REINFORCE, Gumbel-softmax, local-p windows
- ``attnbook.seq2seq``          -- chapter 6: GRU encoder–decoders with and without attention
- ``attnbook.metrics``          -- chapter 6: BLEU, alignment error rate
- ``attnbook.data``             -- generated data sets, one submodule per task
- ``attnbook.exercises``        -- the exercise checkers, one module per chapter
"""

from attnbook.env import get_device, set_seed
from attnbook.plotting import show_heatmaps
from attnbook.shapes import check_float, check_shape

__all__ = ["check_float", "check_shape", "get_device", "set_seed", "show_heatmaps"]
__version__ = "0.1.0"

"""Companion package of the book *Attention, Step by Step*.

Each chapter teaches an idea in its notebook; when a later chapter needs it, it
imports the version kept here. The modules, one idea each:

- ``attnbook.env``              -- ``set_seed``, ``get_device``
- ``attnbook.shapes``           -- ``check_shape``, ``check_float``, ``check_tensor``,
                                   ``check_same_dtype``, ``check_module_input``,
                                   ``check_positive_int``, ``check_ids``, ``check_not_nan``:
                                   clear errors for bad input (the policy below)
- ``attnbook.plotting``         -- ``show_heatmaps`` for attention weights
- ``attnbook.diagrams``         -- schematic figures of the mechanisms, drawn with matplotlib
- ``attnbook.train``            -- ``train_steps``: a small loop with a progress bar and history
- ``attnbook.similarity``       -- chapter 1: dot products, cosine similarity, score matrices
- ``attnbook.softmax``          -- chapter 2: stable softmax, log-softmax, entropy
- ``attnbook.kernel_regression``-- chapter 3: Nadaraya–Watson regression, LOO-CV bandwidth
- ``attnbook.attention``        -- chapter 4: score functions, masks, scaled dot-product attention
- ``attnbook.hard_attention``   -- chapter 5: REINFORCE, Gumbel-softmax, local-p windows
- ``attnbook.seq2seq``          -- chapter 6: GRU encoder–decoders with and without attention
- ``attnbook.metrics``          -- chapter 6: BLEU, alignment error rate
- ``attnbook.positional``       -- chapter 7: sinusoidal, learned and rotary (RoPE) encodings, ALiBi
- ``attnbook.self_attention``   -- chapter 7: self-attention (causal, RoPE), the order classifier
- ``attnbook.multihead``        -- chapter 8: split/merge heads, MultiHeadAttention (MHA/GQA/MQA),
                                   ``copy_from_torch``
- ``attnbook.transformer``      -- chapter 9: FFN, encoder and decoder layers (post-/pre-LN), the
                                   encoder–decoder, a decoder-only language model, warm-up
- ``attnbook.decoding``         -- chapter 9: greedy, beam search, temperature and top-k sampling
- ``attnbook.vision``           -- chapter 10: patches and the Vision Transformer
- ``attnbook.pointer``          -- chapter 10: a pointer network
- ``attnbook.graph``            -- chapter 10: graph attention (GAT)
- ``attnbook.sets``             -- chapter 10: set attention and pooling by attention
- ``attnbook.efficient``        -- chapter 11: naive, online-softmax and tiled attention, windows,
                                   peak memory from the profiler's allocation records
- ``attnbook.kv_cache``         -- chapter 11: the key-value cache for the decoder-only model
- ``attnbook.linear_attention`` -- chapter 11: linear attention (parallel and recurrent), recall
- ``attnbook.data``             -- generated data sets, one submodule per task
- ``attnbook.exercises``        -- the exercise checkers, one module per chapter
- ``attnbook.grade``            -- ``python -m attnbook.grade``: every exercise's verdict in
                                   learners' notebooks, for teachers

Bad input, one policy for the whole package. A function that computes with PyTorch
takes ``torch.Tensor`` arguments: a NumPy array, a list or a number is refused with a
``TypeError`` that names the argument and says how to convert it
(``torch.as_tensor(keys)``). Only ``attnbook.softmax`` (chapter 2 uses it on both),
``show_heatmaps`` and the checks ``check_shape``, ``check_float`` and ``check_not_nan``
also take NumPy arrays, and return the same kind. Tensors that meet in one computation
share a dtype: float32 with float64 is refused, naming both. Wrong sizes, lengths,
token ids and counts raise a ``ValueError`` that says what was expected ("queries have
8 features (shape (2, 3, 8)) but this GeneralScore was built for query_size=16"). A
``nan`` passes through soft attention (nan in, nan out, in the rows it touches);
functions that choose -- an argmax, a sample, a window, a kernel's threshold, a
ranking -- refuse it, as do chapter 2's softmax and entropy. An empty batch gives an
empty result where the maths has one (masks, softmaxes, attention); an empty corpus,
sample or set of keys is refused. The helpers live in ``attnbook.shapes``;
``tests/test_bad_input.py`` holds every public function and class to this.
"""

from attnbook.env import get_device, set_seed
from attnbook.plotting import show_heatmaps
from attnbook.shapes import check_float, check_shape

__all__ = ["check_float", "check_shape", "get_device", "set_seed", "show_heatmaps"]
__version__ = "0.1.0"

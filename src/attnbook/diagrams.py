"""Schematic diagrams of the mechanisms, drawn with matplotlib.

Each ``draw_*`` function returns a matplotlib ``Figure`` and shows nothing by itself
(call ``plt.show()`` or ``fig.savefig(...)``). The diagrams use the shape letters of
``book/notation.md`` (B, T, S, d, d_k, d_v, h, H, E) and put each tensor's shape on the
arrow that carries it. Coordinates are in units of ``UNIT`` inches: a 15-unit-wide
diagram is 7 inches, about 700 px at the book's 100 dpi, the width of its column.
"""

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

UNIT = 0.467  # inches per unit: 15 units = 7 inches, the width of the book's column
FONT = 10  # box labels
SMALL = 9  # shape labels and notes: the smallest text in any diagram

# (fill, edge) for each role: queries blue, keys orange, values green in every diagram
COLOURS = {
    "query": ("#dbe8f7", "#2c5f9e"),
    "key": ("#fde3cc", "#b35a12"),
    "value": ("#d8f0dc", "#2e7d43"),
    "op": ("#f0f0f0", "#555555"),
    "attn": ("#fff2b3", "#9a7b00"),
    "norm": ("#ece0f5", "#6b3e91"),
    "state": ("#e6e6e6", "#333333"),
    "faded": ("#f7f7f7", "#b0b0b0"),
}


@dataclass(frozen=True)
class Box:
    """A drawn box: centre (x, y), width w, height h, in diagram units."""

    x: float
    y: float
    w: float
    h: float

    @property
    def left(self):
        return (self.x - self.w / 2, self.y)

    @property
    def right(self):
        return (self.x + self.w / 2, self.y)

    @property
    def top(self):
        return (self.x, self.y + self.h / 2)

    @property
    def bottom(self):
        return (self.x, self.y - self.h / 2)


def canvas(width, height):
    """A blank figure of ``width`` x ``height`` units whose axes fill it, axis off."""
    fig = plt.figure(figsize=(width * UNIT, height * UNIT))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


def box(ax, x, y, text, w=2.0, h=0.8, role="op", fontsize=FONT, zorder=1):
    """A rounded box centred at (x, y) with ``text`` in it; returns its ``Box``."""
    fill, edge = COLOURS[role]
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, linewidth=1.2,
                                boxstyle="round,pad=0,rounding_size=0.12",
                                facecolor=fill, edgecolor=edge, zorder=zorder))
    if text:
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color="#222222",
                zorder=zorder + 0.5)
    return Box(x, y, w, h)


def arrow(ax, start, end, label=None, side="on", colour="#333333", label_at=0.5):
    """A straight arrow from ``start`` to ``end`` with an optional shape ``label``.

    ``side`` places the label on the arrow ("on", white background), or "above",
    "below", "left", "right" of its point ``label_at`` (0 = start, 1 = end).
    """
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11,
                                 linewidth=1.2, color=colour, shrinkA=0, shrinkB=0))
    if label is not None:
        x = start[0] + label_at * (end[0] - start[0])
        y = start[1] + label_at * (end[1] - start[1])
        shape_label(ax, x, y, label, side)


def shape_label(ax, x, y, text, side="on", fontsize=SMALL, colour="#1a1a1a"):
    """Text next to (x, y): a tensor's shape on the arrow that carries it."""
    gap = 0.12
    place = {"on": (0, 0, "center", "center"), "above": (0, gap, "center", "bottom"),
             "below": (0, -gap, "center", "top"), "left": (-gap, 0, "right", "center"),
             "right": (gap, 0, "left", "center")}
    if side not in place:
        raise ValueError(f"side should be one of {sorted(place)}, got {side!r}")
    dx, dy, ha, va = place[side]
    bbox = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"}
    return ax.text(x + dx, y + dy, text, ha=ha, va=va, fontsize=fontsize, color=colour,
                   bbox=bbox if side == "on" else None)


def elbow(ax, start, end, label=None, x_turn=None, colour="#333333"):
    """An arrow with right angles: across, then up or down into ``end``.

    With ``x_turn`` the path goes across to ``x_turn``, vertically to ``end``'s height,
    then across into ``end``. The label sits on the first leg, or above the last one
    when there is an ``x_turn``.
    """
    if x_turn is not None:
        path = [start, (x_turn, start[1]), (x_turn, end[1])]
    else:
        path = [start, (end[0], start[1])]
    xs, ys = zip(*path, strict=True)
    ax.plot(xs, ys, color=colour, linewidth=1.2, solid_capstyle="butt")
    arrow(ax, path[-1], end, colour=colour)
    if label is not None and x_turn is not None:
        shape_label(ax, (x_turn + end[0]) / 2, end[1], label, side="above")
    elif label is not None:
        (x0, y0), (x1, y1) = path[0], path[1]
        shape_label(ax, (x0 + x1) / 2, (y0 + y1) / 2, label, side="on")


def note(ax, x, y, text, ha="center", fontsize=SMALL, colour="#444444", **kw):
    """Explanatory text (italic grey), not attached to an arrow."""
    return ax.text(x, y, text, ha=ha, va="center", fontsize=fontsize, color=colour,
                   style="italic", **kw)


def grid(ax, x, y, rows, cols, cell=0.3, role="op", highlight=(), highlight_role="attn"):
    """A rows x cols matrix of cells, lower-left corner at (x, y); returns its ``Box``.

    ``highlight`` is a list of (row, col) cells to colour (row 0 at the top); use
    ``None`` for a whole row or column, e.g. ``(1, None)``.
    """
    fill, edge = COLOURS[role]
    hi_fill, hi_edge = COLOURS[highlight_role]
    for r in range(rows):
        for c in range(cols):
            lit = any((hr is None or hr == r) and (hc is None or hc == c)
                      for hr, hc in highlight)
            ax.add_patch(Rectangle((x + c * cell, y + (rows - 1 - r) * cell), cell, cell,
                                   facecolor=hi_fill if lit else fill,
                                   edgecolor=hi_edge if lit else edge, linewidth=0.8))
    w, h = cols * cell, rows * cell
    return Box(x + w / 2, y + h / 2, w, h)


def bars(ax, x, y, heights, width=0.3, max_height=0.9, role="attn", highlight=None):
    """A small bar chart of weights with its baseline at (x, y), one bar per position."""
    fill, edge = COLOURS[role]
    top = max(heights)
    for i, v in enumerate(heights):
        lit = highlight is not None and i == highlight
        ax.add_patch(Rectangle((x + i * width, y), width * 0.8, max_height * v / top,
                               facecolor=edge if lit else fill, edgecolor=edge,
                               linewidth=0.8))
    ax.plot([x - 0.05, x + len(heights) * width], [y, y], color="#555555", linewidth=0.8)
    return Box(x + len(heights) * width / 2, y + max_height / 2,
               len(heights) * width, max_height)


def title(ax, x, y, text, fontsize=FONT + 1, ha="center"):
    """A bold heading."""
    return ax.text(x, y, text, ha=ha, va="center", fontsize=fontsize, weight="bold",
                   color="#111111")


# ---------------------------------------------------------------- chapters 1-6


def draw_score_matrix():
    """Chapter 1: Q (T, d) @ K^T (d, S) -> scores (T, S); entry (i, j) = q_i . k_j."""
    fig, ax = canvas(14, 5.4)
    c = 0.5
    q = grid(ax, 1.0, 1.9, 4, 5, c, role="query", highlight=[(1, None)])
    k = grid(ax, 5.3, 1.65, 5, 6, c, role="key", highlight=[(None, 3)])
    s = grid(ax, 10.2, 1.9, 4, 6, c, role="op", highlight=[(1, 3)])
    ax.text(4.35, q.y, "@", fontsize=16, ha="center", va="center")
    ax.text(9.3, q.y, "=", fontsize=16, ha="center", va="center")
    for b, name, rows, cols in ((q, r"$Q$", "T", "d"), (k, r"$K^\top$", "d", "S"),
                                (s, r"$QK^\top$", "T", "S")):
        title(ax, b.x, 4.95, f"{name}   ({rows}, {cols})")
        _count_labels(ax, b, f"{rows} rows", f"{cols} columns")
    note(ax, q.x, 1.45, "row i: query i", colour="#2c5f9e")
    note(ax, k.x, 1.2, "column j: key j", colour="#b35a12")
    note(ax, s.x, 1.45, "entry (i, j): query i with key j")
    note(ax, 7.0, 0.45, r"scores$_{ij} = \mathbf{q}_i^\top\mathbf{k}_j$: the highlighted row"
         " times the highlighted column", colour="#222222")
    return fig


def _count_labels(ax, b, rows, cols):
    """Label a grid's number of rows (left, turned) and columns (above)."""
    ax.text(b.x - b.w / 2 - 0.12, b.y, rows, ha="right", va="center", fontsize=SMALL,
            rotation=90, color="#444444")
    ax.text(b.x, b.y + b.h / 2 + 0.12, cols, ha="center", va="bottom", fontsize=SMALL,
            color="#444444")


def draw_attention_pooling():
    """Chapter 3: a query and S keys -> scores -> softmax -> weights -> sum of values."""
    fig, ax = canvas(15, 6)
    y = 3.9
    q = box(ax, 1.2, 5.0, r"query $\mathbf{q}$", w=1.9, role="query")
    k = box(ax, 1.2, 3.0, "keys\n" + r"$\mathbf{k}_1 \ldots \mathbf{k}_S$", w=1.9, h=1.0,
            role="key")
    v = box(ax, 1.2, 1.1, "values\n" + r"$\mathbf{v}_1 \ldots \mathbf{v}_S$", w=1.9, h=1.0,
            role="value")
    sc = box(ax, 4.6, y, "score\n" + r"$a(\mathbf{q}, \mathbf{k}_j)$", w=1.9, h=1.1)
    sm = box(ax, 7.6, y, "softmax", w=1.5)
    ws = box(ax, 10.9, y, "weighted sum\n" + r"$\sum_j \alpha_j \mathbf{v}_j$", w=2.4, h=1.3,
             role="attn")
    out = box(ax, 14.2, y, "output", w=1.3, role="value")
    arrow(ax, q.right, (sc.left[0], y + 0.3), "(d,)", side="above", label_at=0.4)
    arrow(ax, k.right, (sc.left[0], y - 0.3), "(S, d)", side="below", label_at=0.4)
    arrow(ax, sc.right, sm.left, "(S,)", side="above")
    arrow(ax, sm.right, ws.left, r"$\alpha$ (S,)", side="above")
    elbow(ax, v.right, ws.bottom, "(S, d_v)")
    arrow(ax, ws.right, out.left, "(d_v,)", side="above")
    bars(ax, 7.0, 2.25, [0.05, 0.1, 0.6, 0.2, 0.05], width=0.25, max_height=0.8)
    note(ax, 7.6, 1.85, r"weights $\alpha_j \geq 0$, $\sum_j \alpha_j = 1$")
    note(ax, 7.5, 0.3, "T queries at once: Q (T, d), K (S, d) → scores, weights (T, S)"
         " → output (T, d_v)")
    return fig


def draw_hard_vs_soft():
    """Chapter 5: soft attention averages all values; hard attention samples one."""
    fig, ax = canvas(15, 6.6)
    weights = [0.05, 0.08, 0.1, 0.55, 0.12, 0.05, 0.05]
    for y, soft in ((4.6, True), (1.6, False)):
        title(ax, 0.2, y + 1.3, "soft attention: average all values" if soft
              else "hard attention: sample one position", ha="left")
        sm = box(ax, 2.9, y, "softmax", w=1.5)
        arrow(ax, (0.2, y), sm.left, "scores (B, S)", side="above")
        b = bars(ax, 5.3, y - 0.45, weights, width=0.3, highlight=None if soft else 3)
        arrow(ax, sm.right, (b.left[0] - 0.15, y), r"$\alpha$ (B, S)" if soft
              else r"$a \sim \alpha$", side="above")
        pool = box(ax, 9.6, y, r"$\sum_s \alpha_s \mathbf{v}_s$" if soft
                   else r"$\mathbf{v}_a$", w=1.8, h=0.9, role="attn")
        arrow(ax, (b.right[0] + 0.15, y), pool.left)
        cls = box(ax, 13.5, y, "classifier", w=1.8)
        arrow(ax, pool.right, cls.left, "(B, d)", side="above")
        note(ax, b.x, y - 0.8, r"every $\alpha_s$ used" if soft
             else "position a, drawn from " + r"$\alpha$")
        note(ax, 11.5, y - 0.8, "backprop reaches every weight" if soft
             else "no gradient through the draw: REINFORCE")
    return fig


def draw_local_p_window(S=22, p=12.4, D=4):
    """Chapter 5: local-p scores only the 2D + 1 positions around a predicted centre p.

    ``S`` source positions (at most 24, so the cells stay legible), a real-valued centre
    ``p`` in [0, S - 1] and the window's half-width ``D`` (2D + 1 <= S).
    """
    for name, value in (("S", S), ("D", D)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} should be an int, got {type(value).__name__}")
    if not 1 <= D or not 2 * D + 1 <= S <= 24:
        raise ValueError(f"need D >= 1 and 2D + 1 <= S <= 24; got S={S}, D={D}")
    if not 0 <= p <= S - 1:
        raise ValueError(f"p should lie in [0, S - 1] = [0, {S - 1}], got {p}")
    fig, ax = canvas(14, 6.6)
    cell, x0, y0, top = 0.5, 2.4, 2.2, 2.6
    centre = min(max(round(p), D), S - D - 1)
    window = range(centre - D, centre + D + 1)
    for s in range(S):
        fill, edge = COLOURS["attn" if s in window else "faded"]
        ax.add_patch(Rectangle((x0 + s * cell, y0), cell, cell, facecolor=fill,
                               edgecolor=edge, linewidth=0.8))
    note(ax, x0 - 0.2, y0 + cell / 2, "source\npositions", ha="right")

    def gauss(s):  # Luong's Gaussian, sigma = D / 2
        return np.exp(-((s - p) ** 2) / (2 * (D / 2) ** 2))

    content = np.random.default_rng(3).uniform(0.3, 1.0, S)  # softmax of some scores
    for s in window:
        ax.add_patch(Rectangle((x0 + (s + 0.2) * cell, y0 + cell), 0.6 * cell,
                               top * gauss(s) * content[s], facecolor="#d9b600",
                               edgecolor="#9a7b00", linewidth=0.8))
    s_axis = np.linspace(-0.5, S - 0.5, 400)
    inside = (s_axis >= centre - D - 0.5) & (s_axis <= centre + D + 0.5)
    curve = y0 + cell + top * gauss(s_axis)
    xs = x0 + (s_axis + 0.5) * cell
    ax.plot(xs[inside], curve[inside], color="#9a7b00", linewidth=1.6)
    ax.plot(xs, np.where(inside, np.nan, curve), color="#9a7b00", linewidth=1.0,
            linestyle=":")
    xp = x0 + (p + 0.5) * cell
    ax.plot([xp, xp], [y0, y0 + cell + top + 0.3], color="#2c5f9e", linewidth=1.4,
            linestyle="--")
    shape_label(ax, xp, y0 + cell + top + 0.4, r"centre $p = S\cdot\sigma(\mathbf{v}_p^\top"
                r"\tanh(W_p\mathbf{h}))$", side="above", colour="#2c5f9e")
    xc = x0 + (centre + 0.5) * cell
    for end in (centre - D, centre + D):
        x_end = x0 + (end + 0.5) * cell
        arrow(ax, (xc, y0 - 0.3), (x_end, y0 - 0.3), "D", side="below")
    note(ax, xc, y0 - 1.05, "the 2D + 1 positions scored, around round(p)")
    note(ax, x0 + 1.6, y0 - 0.55, "outside: not scored,\nweight 0", colour="#888888")
    note(ax, x0 + S * cell - 1.3, y0 + 2.2, r"$\exp\left(-\frac{(s - p)^2}{2\sigma^2}\right)$"
         "\n" + r"$\sigma = D/2$", colour="#7a6000", fontsize=FONT)
    note(ax, 7.0, 0.3, r"bars: weight of position s = softmax of the window's scores"
         r" $\times$ the Gaussian")
    return fig


def _rnn_row(ax, x0, y, n, role, step=1.6, w=1.1):
    """A row of n RNN cells joined left to right; returns the boxes."""
    cells = [box(ax, x0 + i * step, y, "GRU", w=w, h=0.7, role=role) for i in range(n)]
    for a, b in zip(cells, cells[1:], strict=False):
        arrow(ax, a.right, b.left)
    return cells


def draw_seq2seq_bottleneck():
    """Chapter 6: without attention, the whole source passes through one vector c."""
    fig, ax = canvas(14, 6)
    title(ax, 3.3, 5.6, "encoder")
    title(ax, 11.3, 5.6, "decoder")
    enc = _rnn_row(ax, 0.9, 3.4, 4, "key")
    for e, word in zip(enc, [r"$x_1$", r"$x_2$", r"$\ldots$", r"$x_S$"], strict=True):
        box(ax, e.x, 1.6, word, w=0.9, h=0.6, role="key")
        arrow(ax, (e.x, 1.9), e.bottom)
    c = box(ax, 7.2, 3.4, r"$\mathbf{c}$", w=0.6, h=1.4, role="attn", fontsize=FONT + 2)
    arrow(ax, enc[-1].right, c.left)
    note(ax, c.x, 5.0, "one vector\n(B, H)", colour="#7a6000")
    dec = _rnn_row(ax, 9.4, 3.4, 3, "query", step=1.9)
    arrow(ax, c.right, dec[0].left)
    ax.plot([c.x, c.x, dec[-1].x], [c.bottom[1], 2.3, 2.3], color="#9a7b00", linewidth=1.3)
    for d, word in zip(dec, [r"$y_1$", r"$y_2$", r"$\ldots\ y_T$"], strict=True):
        box(ax, d.x, 5.0, word, w=1.0, h=0.6, role="query")
        arrow(ax, d.top, (d.x, 4.7))
        arrow(ax, (d.x, 2.3), d.bottom, colour="#9a7b00")
    note(ax, 11.3, 1.85, r"$\mathbf{c}$ again at every step", colour="#7a6000")
    note(ax, 3.3, 0.8, "source words (B, S)")
    note(ax, 7.0, 0.25, "every target word is read from the same H numbers, "
         "however long the source")
    return fig


def draw_bahdanau_vs_luong():
    """Chapter 6: Bahdanau attends, then steps; Luong steps, then attends."""
    fig, ax = canvas(15, 8)
    _bahdanau_panel(ax)
    ax.plot([7.5, 7.5], [0.3, 7.6], color="#cccccc", linewidth=1)
    _luong_panel(ax, 7.7)
    return fig


def _bahdanau_panel(ax):
    title(ax, 3.6, 7.6, "Bahdanau: look, then step")
    prev = box(ax, 1.0, 1.0, r"$\mathbf{s}_{t-1}$", w=1.2, role="query")
    ann = box(ax, 5.4, 1.0, r"annotations $\mathbf{a}_j$", w=2.4, role="key")
    att = box(ax, 3.4, 2.8, "additive attention", w=2.8, role="attn")
    arrow(ax, prev.top, (att.x - 0.9, att.bottom[1]), "(B, H)", side="right", label_at=0.45)
    arrow(ax, ann.top, (att.x + 0.9, att.bottom[1]), "(B, S, 2H+E)", side="right")
    gru = box(ax, 3.4, 4.6, "GRU step", w=2.4)
    arrow(ax, att.top, gru.bottom, r"$\mathbf{c}_t$ (B, 2H+E)", side="right")
    elbow(ax, prev.left, gru.left, "state", x_turn=0.15)
    emb = box(ax, 6.4, 4.6, r"$\mathbf{e}(y_{t-1})$", w=1.5, role="value")
    arrow(ax, emb.left, gru.right, "(B, E)", side="above")
    out = box(ax, 3.6, 6.5, r"$p(y_t)$ from $[\mathbf{s}_t; \mathbf{c}_t; "
              r"\mathbf{e}(y_{t-1})]$", w=4.6)
    arrow(ax, gru.top, (gru.x, out.bottom[1]), r"$\mathbf{s}_t$ (B, H)", side="right")


def _luong_panel(ax, x0):
    title(ax, x0 + 3.6, 7.6, "Luong: step, then look")
    prev = box(ax, x0 + 1.0, 1.0, r"$\mathbf{h}_{t-1}$", w=1.2, role="query")
    emb = box(ax, x0 + 4.5, 1.0, r"$\mathbf{e}(y_{t-1})$", w=1.6, role="value")
    gru = box(ax, x0 + 2.8, 2.8, "GRU step", w=2.4)
    arrow(ax, prev.top, (gru.x - 0.8, gru.bottom[1]), "(B, H)", side="left", label_at=0.45)
    arrow(ax, emb.top, (gru.x + 0.8, gru.bottom[1]), "(B, E)", side="right")
    att = box(ax, x0 + 2.8, 4.6, "general attention", w=2.8, role="attn")
    arrow(ax, gru.top, att.bottom, r"$\mathbf{h}_t$ (B, H)", side="right")
    ann = box(ax, x0 + 6.75, 4.6, r"$\mathbf{a}_j$", w=0.7, role="key")
    arrow(ax, ann.left, att.right, "(B, S, 2H+E)", side="above", label_at=0.55)
    out = box(ax, x0 + 2.8, 6.5, r"$\tanh(W_c[\mathbf{c}_t; \mathbf{h}_t]) \to p(y_t)$",
              w=4.2)
    arrow(ax, att.top, out.bottom, r"$\mathbf{c}_t$ (B, 2H+E)", side="right")
    elbow(ax, gru.left, out.left, x_turn=x0 + 0.3, colour="#888888")


# ---------------------------------------------------------------- chapters 4, 7-9


def draw_scaled_dot_product_attention(mask=True):
    """Chapter 4: matmul, scale, mask, softmax, matmul, with the shapes between.

    ``mask=True`` draws the additive mask M (0 where attending is allowed, -inf elsewhere).
    """
    if not isinstance(mask, bool):
        raise TypeError(f"mask should be True or False, got {type(mask).__name__}")
    fig, ax = canvas(11, 8.4)
    x = 3.6
    blocks = [(r"$QK^\top$", "op"), (r"$\div\sqrt{d_k}$", "op")]
    blocks += [(r"$+\ M$", "norm")] if mask else []
    blocks += [("softmax", "op"), (r"weights $@\ V$", "attn")]
    chain = _layer_stack(ax, x, 1.9, blocks, w=2.0, gap=0.5, h=0.7)
    q = box(ax, x - 1.6, 0.6, r"$Q$", w=1.0, role="query")
    k = box(ax, x + 1.6, 0.6, r"$K$", w=1.0, role="key")
    arrow(ax, q.top, (x - 0.5, chain[0].bottom[1]), "(B, T, d_k)", side="left")
    arrow(ax, k.top, (x + 0.5, chain[0].bottom[1]), "(B, S, d_k)", side="right")
    shape_label(ax, x + 0.12, (chain[0].top[1] + chain[1].bottom[1]) / 2, "scores (B, T, S)",
                side="right")
    shape_label(ax, x + 0.12, (chain[-2].top[1] + chain[-1].bottom[1]) / 2,
                "weights (B, T, S)", side="right")
    v = box(ax, x + 4.6, chain[-1].y, r"$V$", w=1.0, role="value")
    arrow(ax, v.left, chain[-1].right, "(B, S, d_v)", side="above")
    arrow(ax, chain[-1].top, (x, chain[-1].top[1] + 0.7), "output (B, T, d_v)",
          side="right", label_at=0.6)
    if mask:
        note(ax, x + 1.3, chain[2].y, "M = 0: may attend\n" + r"M = $-\infty$: masked",
             ha="left")
    return fig


def draw_self_attention():
    """Chapter 7: Q, K and V are three projections of one sequence X."""
    fig, ax = canvas(15, 6)
    x = box(ax, 1.1, 3.0, r"$X$", w=1.3, role="state")
    shape_label(ax, x.x, x.bottom[1] - 0.15, "(B, T, d)", side="below")
    att = box(ax, 10.3, 3.0, "scaled dot-product\nattention\n"
              r"softmax$(QK^\top/\sqrt{d_k})\,V$", w=3.4, h=2.0, role="attn")
    for y, w_name, role, label in ((4.8, "W_q", "query", "Q (B, T, d_k)"),
                                   (3.0, "W_k", "key", "K (B, T, d_k)"),
                                   (1.2, "W_v", "value", "V (B, T, d_v)")):
        proj = box(ax, 4.0, y, rf"${w_name}$", w=1.2, role=role)
        arrow(ax, x.right, proj.left)
        arrow(ax, proj.right, (att.left[0], 3.0 + (y - 3.0) * 0.35), label, side="on",
              label_at=0.45)
    out = box(ax, 14.1, 3.0, "output", w=1.5, role="value")
    arrow(ax, att.right, out.left)
    shape_label(ax, out.x, out.bottom[1] - 0.15, "(B, T, d_v)", side="below")
    note(ax, 10.3, 1.35, "weights (B, T, T): every position\nlooks at every position")
    note(ax, 7.5, 0.25, "queries, keys and values all come from one sequence: S = T")
    return fig


def draw_multihead_attention():
    """Chapter 8: project, split into h heads, attend per head, concatenate, project."""
    fig, ax = canvas(14, 10)
    x = 4.2
    blocks = [(r"$W_q,\ W_k,\ W_v$", "op"), ("split into h heads", "op"),
              None, ("concatenate heads", "op"), (r"$W_o$", "op")]
    chain = _layer_stack(ax, x, 1.5, blocks, w=3.4, gap=0.8, h=0.75)
    row = chain[2]  # the slot where the h heads sit side by side
    for dx, label in ((-1.3, "head 1"), (0, r"$\ldots$"), (1.3, "head h")):
        head = box(ax, x + dx, row.y, label, w=1.15, h=row.h, role="attn")
        arrow(ax, (x, chain[1].top[1]), head.bottom)
        arrow(ax, head.top, (x, chain[3].bottom[1]))
    arrow(ax, (x, 0.4), chain[0].bottom, "X (B, T, d)", side="right", label_at=0.45)
    labels = ["Q, K, V (B, T, d)", "(B, h, T, d_h)", "(B, h, T, d_h)",
              "(B, T, h·d_h) = (B, T, d)"]
    for lower, upper, label in zip(chain[:-1], chain[1:], labels, strict=True):
        shift = 1.75 if row in (lower, upper) else 0.12
        shape_label(ax, x + shift, (lower.top[1] + upper.bottom[1]) / 2, label, side="right")
    arrow(ax, chain[-1].top, (x, chain[-1].top[1] + 0.7), "(B, T, d)", side="right")
    note(ax, 10.8, chain[1].y, "split: (B, T, d) → (B, T, h, d_h)\n"
         "→ (B, h, T, d_h), with d_h = d / h")
    note(ax, 10.8, row.y, "every head attends at once,\nwith its own weights (B, h, T, S)")
    note(ax, 10.8, chain[3].y, "concatenate: the reverse\nreshape, back to width d")
    return fig


def _layer_stack(ax, x, y0, blocks, w=3.2, gap=0.55, h=0.75):
    """Boxes stacked bottom-up from y0 with arrows between; returns their ``Box``es.

    ``blocks`` are (text, role) pairs; a ``None`` leaves an empty slot of the same size
    (no box, no arrows in or out) for the caller to fill.
    """
    boxes, y = [], y0
    for block in blocks:
        if block is None:
            b = Box(x, y + h / 2, w, h)
        else:
            b = box(ax, x, y + h / 2, block[0], w=w, h=h, role=block[1])
            if boxes and blocks[len(boxes) - 1] is not None:
                arrow(ax, boxes[-1].top, b.bottom)
        boxes.append(b)
        y += h + gap
    return boxes


def _residual(ax, from_y, to_box, side):
    """A residual path: from height from_y on the main line, around, into ``to_box``."""
    x_out = to_box.x + side * (to_box.w / 2 + 0.35)
    ax.plot([to_box.x, x_out, x_out], [from_y, from_y, to_box.y], color="#888888",
            linewidth=1.1)
    arrow(ax, (x_out, to_box.y), to_box.right if side > 0 else to_box.left, colour="#888888")


def draw_transformer():
    """Chapter 9: an encoder layer and a decoder layer (post-LN, as in Vaswani et al.)."""
    fig, ax = canvas(15, 11)
    xe, xd = 3.2, 11.2
    enc = _layer_stack(ax, xe, 1.8, w=3.5, blocks=[
        ("self-attention", "attn"), ("Add & LayerNorm", "norm"),
        ("feed-forward (FFN)", "op"), ("Add & LayerNorm", "norm")])
    dec = _layer_stack(ax, xd, 1.8, w=3.5, blocks=[
        ("masked self-attention", "attn"), ("Add & LayerNorm", "norm"),
        ("cross-attention", "attn"), ("Add & LayerNorm", "norm"),
        ("feed-forward (FFN)", "op"), ("Add & LayerNorm", "norm")])
    title(ax, xe, 10.5, "encoder layer (× N)")
    title(ax, xd, 10.5, "decoder layer (× N)")
    arrow(ax, (xe, 0.6), enc[0].bottom, "source (B, S, d)", side="right", label_at=0.4)
    arrow(ax, (xd, 0.6), dec[0].bottom, "target (B, T, d)", side="right", label_at=0.4)
    for stack, side in ((enc, -1), (dec, +1)):
        for i in range(1, len(stack), 2):
            below = stack[i - 1].bottom[1] - 0.27
            _residual(ax, below, stack[i], side)
    memory_y = enc[-1].top[1] + 0.8
    ax.plot([xe, xe, 7.0, 7.0], [enc[-1].top[1], memory_y, memory_y, dec[2].y],
            color="#b35a12", linewidth=1.3)
    arrow(ax, (7.0, dec[2].y), dec[2].left, colour="#b35a12")
    shape_label(ax, 5.1, memory_y, "memory (B, S, d)", side="above", colour="#b35a12")
    note(ax, 7.2, dec[2].y - 0.55, "keys, values", ha="left", colour="#b35a12")
    arrow(ax, dec[-1].top, (xd, dec[-1].top[1] + 0.6), "(B, T, d)", side="right")
    note(ax, dec[0].left[0] - 0.2, dec[0].y, "causal mask:\nj <= i only", ha="right")
    note(ax, xe, 8.2, "FFN: Linear, ReLU, Linear at each position\n"
         "grey: residual paths, x + sublayer(x)")
    return fig


def draw_post_ln_vs_pre_ln():
    """Chapter 9: where the LayerNorm sits around a sublayer (attention or FFN)."""
    fig, ax = canvas(14, 6.8)
    post = _layer_stack(ax, 3.5, 1.2, [("sublayer", "attn"), ("add: x + sublayer(x)", "op"),
                                       ("LayerNorm", "norm")], w=3.4)
    pre = _layer_stack(ax, 10.3, 1.2, [("LayerNorm", "norm"), ("sublayer", "attn"),
                                       ("add: x + sublayer(LN(x))", "op")], w=4.0)
    title(ax, 3.5, 6.4, "post-LN (the original Transformer)")
    title(ax, 10.3, 6.4, "pre-LN (GPT-2 and many since)")
    for stack in (post, pre):
        arrow(ax, (stack[0].x, 0.3), stack[0].bottom, "x", side="right", label_at=0.3)
        arrow(ax, stack[-1].top, (stack[0].x, stack[-1].top[1] + 0.5))
    _residual(ax, 0.75, post[1], -1)
    _residual(ax, 0.75, pre[2], +1)
    note(ax, 3.5, 5.6, "the residual path passes\nthrough every LayerNorm")
    note(ax, 10.3, 5.6, "the residual path is clean; one more\nLayerNorm after the last layer")
    return fig


def draw_attention_rollout():
    """Chapter 12: rollout and flow read the layers as a graph; each layer's edges are
    the head-averaged attention plus the residual path, A' = (A + I) / 2."""
    fig, ax = canvas(15, 7.2)
    T, x0, dx, levels = 4, 1.2, 2.0, (0.9, 3.2, 5.5)
    names = ["[CLS]", "x1", "x2", "x3"]
    A = np.array([[[.1, .2, .6, .1], [.1, .7, .1, .1], [.1, .1, .2, .6], [.1, .1, .7, .1]],
                  [[.1, .1, .7, .1], [.3, .3, .2, .2], [.2, .2, .3, .3], [.2, .3, .3, .2]]])
    for layer in range(2):
        lo, hi = levels[layer] + 0.3, levels[layer + 1] - 0.3
        for i in range(T):
            for j in range(T):
                w = (A[layer, i, j] + (i == j)) / 2
                ax.plot([x0 + i * dx, x0 + j * dx], [hi, lo], color="#9a7b00",
                        linewidth=0.4 + 5 * w, alpha=0.25 + 0.7 * w, zorder=0)
    for level, y in enumerate(levels):
        for i in range(T):
            role = "attn" if (level == 2 and i == 0) else ("query" if level else "key")
            box(ax, x0 + i * dx, y, names[i] if level == 0 else f"h{level}" if i else "cls",
                w=1.1, h=0.6, role=role)
    side = x0 + (T - 1) * dx + 1.0
    note(ax, side, levels[0], "inputs: which of them did the\n[CLS] output draw on?",
         ha="left")
    for layer in range(2):
        y = (levels[layer] + levels[layer + 1]) / 2
        shape_label(ax, side, y, f"layer {layer + 1}: A′{'₁₂'[layer]} = (A{'₁₂'[layer]} + I) / 2"
                    "   (T, T)", side="right")
    note(ax, side, levels[2], "output of the last layer", ha="left")
    shape_label(ax, 7.5, 6.65, "rollout: R = A′₂ A′₁, row [CLS]    "
                "flow: max flow from the top [CLS] to each input", side="on")
    return fig


DIAGRAMS = {
    "score matrix": draw_score_matrix,
    "attention pooling": draw_attention_pooling,
    "scaled dot-product attention": draw_scaled_dot_product_attention,
    "hard vs soft": draw_hard_vs_soft,
    "local-p window": draw_local_p_window,
    "seq2seq bottleneck": draw_seq2seq_bottleneck,
    "Bahdanau vs Luong": draw_bahdanau_vs_luong,
    "self-attention": draw_self_attention,
    "multi-head attention": draw_multihead_attention,
    "Transformer": draw_transformer,
    "post-LN vs pre-LN": draw_post_ln_vs_pre_ln,
    "attention rollout": draw_attention_rollout,
}

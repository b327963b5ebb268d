"""Chapter 11's schematic diagrams, drawn with the helpers of ``attnbook.diagrams``.

- ``draw_tiled_attention``: the (T, S) scores cut into (b, b) tiles; one block of
  queries walks along the key blocks, keeping a running maximum, sum and output;
- ``draw_kv_cache``: one decoding step with a cache — one new query, key and value,
  the cache grown by one position along S.
"""

from matplotlib.patches import Rectangle

from attnbook.diagrams import COLOURS, arrow, box, canvas, note, shape_label, title
from attnbook.shapes import check_positive_int


def _tile(ax, x, y, size, role, text=None, fontsize=9):
    fill, edge = COLOURS[role]
    ax.add_patch(Rectangle((x, y), size, size, facecolor=fill, edgecolor=edge,
                           linewidth=1.0))
    if text:
        ax.text(x + size / 2, y + size / 2, text, ha="center", va="center",
                fontsize=fontsize, color="#222222")


def draw_tiled_attention(blocks: int = 4, row: int = 2, col: int = 1):
    """Tiled (FlashAttention-style) causal attention: query block ``row`` has met key
    blocks 0 .. ``col`` - 1 and now scores tile (row, col); tiles above the diagonal
    are skipped. ``row`` and ``col`` count from 0 (the panel names block Q{row + 1}):
    0 <= col <= row < blocks."""
    check_positive_int(blocks, "blocks")
    check_positive_int(row, "row", minimum=0)
    check_positive_int(col, "col", minimum=0)
    if row >= blocks:
        raise ValueError(f"row should be a query block 0 .. blocks - 1 = {blocks - 1}, "
                         f"got row = {row}")
    if col > row:
        raise ValueError(f"col = {col} is above the diagonal of row = {row}: causal "
                         f"attention skips that tile; give col in 0 .. {row}")
    fig, ax = canvas(15, 9.2)
    c, x0, y0 = 1.05, 1.9, 1.35  # tile size; lower-left corner of the tile grid
    top = y0 + blocks * c
    for j in range(blocks):  # key blocks above the grid
        _tile(ax, x0 + j * c + 0.1, top + 0.35, c - 0.2, "key", f"K{j + 1}")
    for i in range(blocks):  # query blocks left of the grid
        y = top - (i + 1) * c
        _tile(ax, x0 - c - 0.25, y + 0.1, c - 0.2, "query", f"Q{i + 1}")
        for j in range(blocks):
            x = x0 + j * c
            if j > i:
                _tile(ax, x, y, c, "faded")
                ax.add_patch(Rectangle((x, y), c, c, fill=False, hatch="//",
                                       edgecolor="#cccccc", linewidth=0))
            elif i == row and j == col:
                _tile(ax, x, y, c, "attn", "now")
            elif i == row and j < col:
                _tile(ax, x, y, c, "state", "done")
            else:
                _tile(ax, x, y, c, "op")
    title(ax, x0 + blocks * c / 2, top + 1.65, "scores (T, S), in (b, b) tiles")
    note(ax, x0 - c / 2 - 0.25, top + 0.78, "Q blocks\n(b, d)", colour="#2c5f9e")
    note(ax, x0 + blocks * c + 0.12, top + 0.78, "K, V\nblocks", ha="left",
         colour="#b35a12")
    note(ax, x0 + blocks * c / 2 - 0.5, y0 - 0.35, "hatched: future keys, skipped", fontsize=9)
    note(ax, x0 + blocks * c / 2 - 0.5, y0 - 0.8, "only one (b, b) tile exists at a time")
    y_row = top - (row + 0.5) * c
    arrow(ax, (x0 + blocks * c + 0.15, y_row), (7.7, 6.35), label="tile (b, b)",
          side="on", label_at=0.3)
    state_x = 10.35
    title(ax, state_x, 8.25, f"running state of block Q{row + 1}")
    box(ax, state_x, 7.3, "m (b,): largest score so far", w=5.2, h=0.7, role="state")
    box(ax, state_x, 6.35, "l (b,): Σ exp(s − m)", w=5.2, h=0.7, role="state")
    box(ax, state_x, 5.4, "acc (b, d_v): Σ exp(s − m) v", w=5.2, h=0.7, role="value")
    note(ax, state_x + 0.3, 4.5, "after each tile, with the new maximum m′:", colour="#222222")
    for k, line in enumerate((r"$m' = \max(m,\ \max_j s_{ij})$",
                              r"$l' = l\,e^{m-m'} + \sum_j e^{s_{ij}-m'}$",
                              r"$acc' = acc\,e^{m-m'} + \sum_j e^{s_{ij}-m'}\,v_j$")):
        ax.text(8.2, 3.8 - 0.78 * k, line, ha="left", va="center", fontsize=10)
    note(ax, state_x, 1.55, "after the last tile of the row:", colour="#222222")
    ax.text(state_x, 0.95, r"output = acc / l   (b, d_v)", ha="center", va="center",
            fontsize=10)
    return fig


def draw_kv_cache():
    """One step of decoding with a KV cache: the new token gives one query, key and value;
    the key and value join the cache; the query attends to all S + 1 of them."""
    fig, ax = canvas(15, 6.2)
    S, c, x0 = 6, 0.62, 4.0
    title(ax, 7.5, 5.75, "one decoding step with a key-value cache (one head)")
    tok = box(ax, 1.3, 3.0, "new token\nat position S", w=2.2, h=1.1, role="op")
    q = box(ax, 3.9, 1.1, r"$q$ (1, d_h)", w=1.7, h=0.65, role="query")
    for role, name, y in (("key", "K", 4.25), ("value", "V", 2.75)):
        for j in range(S + 1):
            _tile(ax, x0 + j * c, y, c, role if j == S else "faded",
                  None if j < S else "new")
        note(ax, x0 + S * c / 2, y + c + 0.3, f"cached {name}: S positions (S, d_h)",
             colour="#444444")
    arrow(ax, tok.right, (x0 - 0.05, 4.25 + c / 2), label="k (1, d_h)", side="above",
          label_at=0.45)
    arrow(ax, tok.right, (x0 - 0.05, 2.75 + c / 2), label="v", side="below", label_at=0.55)
    arrow(ax, (tok.x, tok.y - 0.55), q.top)
    end = x0 + (S + 1) * c
    a = box(ax, 11.4, 3.3, "attention of q\nto all S + 1 keys", w=3.0, h=1.2, role="attn")
    arrow(ax, (end + 0.1, 4.25 + c / 2), (a.x - 0.6, a.y + 0.6))
    shape_label(ax, end + 0.2, 4.25 + c + 0.2, "K, V: (S + 1, d_h)", side="right")
    arrow(ax, (end + 0.1, 2.75 + c / 2), (a.left[0], a.y - 0.2))
    arrow(ax, q.right, (a.x - 0.6, a.y - 0.6))
    out = box(ax, 11.4, 1.1, "output (1, d_h)", w=2.4, h=0.6, role="op")
    arrow(ax, a.bottom, out.top)
    note(ax, 7.5, 0.3, "no mask needed: the one query is the last position",
         colour="#222222")
    return fig


DIAGRAMS = {"tiled_attention": draw_tiled_attention, "kv_cache": draw_kv_cache}

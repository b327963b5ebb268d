"""Figures of chapters 5, 7 and 11: local-p windows, RoPE, online softmax. No trained model.

Data from ``attnbook.hard_attention``, ``attnbook.positional`` and ``attnbook.efficient``
at every setting of the controls.
"""

from __future__ import annotations

import math

import altair as alt
import matplotlib.pyplot as plt
import torch

from attnbook.attention import masked_softmax
from attnbook.efficient import naive_attention
from attnbook.hard_attention import local_p_weights, window_positions
from attnbook.interactive.figure import WIDTH, InteractiveFigure, grid, rounded, slider
from attnbook.interactive.foundations import _float_tensor
from attnbook.positional import apply_rope
from attnbook.shapes import check_positive_int

# --------------------------------------------------------------- 5. local-p


def local_p_figure(scores: torch.Tensor | None = None, max_half_width: int = 4
                   ) -> InteractiveFigure:
    """Chapter 5: Luong's local-p attention. Move the predicted centre p and the half-width
    D: the window of 2D + 1 positions, the weights (softmax inside the window times a
    Gaussian around p) against global attention's, and what the window costs (scores
    computed). scores (S,) content scores; default 16 seeded scores."""
    if scores is None:
        scores = torch.randn(16, generator=torch.Generator().manual_seed(0))
    s = _float_tensor(scores, "scores", ("S",))
    S = len(s)
    check_positive_int(max_half_width, "max_half_width")
    if 2 * max_half_width + 1 > S:
        raise ValueError(f"max_half_width should leave the window (2D + 1 positions) inside "
                         f"the S = {S} scores, got {max_half_width}")
    centre = slider("centre", "centre p", [c / 2 for c in range(2 * S - 1)], (S - 1) / 2)
    half = slider("half", "half-width D", range(1, max_half_width + 1), 2)
    glob = masked_softmax(s)  # (S,): global attention, for comparison

    def expected(st):
        p, D = torch.tensor([float(st["centre"])], dtype=s.dtype), st["half"]
        w = local_p_weights(s[None], p, D)[0]  # (S,), zero outside the window
        inside = set(window_positions(p, D, S)[0].tolist())
        return {"local": [{"pos": j, "w": rounded(w[j]), "inside": j in inside}
                          for j in range(S)],
                "cost": [{"text": f"scores computed: {2 * D + 1} of {S} "
                                  f"({(2 * D + 1) / S:.0%})"}]}

    rows = {"local": [], "cost": []}
    for p, D in grid(centre.values, half.values):
        for mark, recs in expected({"centre": p, "half": D}).items():
            rows[mark] += [{**rec, "p": p, "D": D} for rec in recs]
    setting = f"({centre.matches('p')}) && ({half.matches('D')})"
    x = alt.X("pos:O", title="source position")
    global_bars = alt.Chart(alt.Data(values=[{"pos": j, "g": rounded(v)}
                                             for j, v in enumerate(glob)])).mark_bar(
        color="#dddddd").encode(x=x, y=alt.Y("g:Q", title="weight"))
    local = alt.Chart(alt.Data(values=rows["local"]), name="local").mark_bar(
        width=8).encode(
        x=x, y=alt.Y("w:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.condition("datum.inside", alt.value("#4c78a8"), alt.value("#bbbbbb")),
        tooltip=["pos:O", alt.Tooltip("w:Q", format=".3f")],
    ).transform_filter(setting)
    cost = alt.Chart(alt.Data(values=rows["cost"]), name="cost").mark_text(
        align="left", fontSize=12).encode(text="text:N").transform_filter(setting).properties(
        width=2 * WIDTH, height=16)
    bars = alt.layer(global_bars, local).properties(
        width=2 * WIDTH, height=WIDTH - 80,
        title="local-p weights (blue, inside the window) over global attention's (grey)")
    chart = alt.vconcat(bars, cost).add_params(centre.param(), half.param())

    def draw_png(st):
        data = expected(st)
        fig, ax = plt.subplots(figsize=(6.5, 2.8))
        ax.bar(range(S), glob.numpy(), color="0.85", label="global")
        ax.bar(range(S), [d["w"] for d in data["local"]], width=0.4, label="local-p")
        ax.set(xlabel="source position", ylabel="weight", ylim=(0, 1),
               title=f"p = {st['centre']}, D = {st['half']}: {data['cost'][0]['text']}")
        ax.legend()
        return fig

    return InteractiveFigure(
        chart, f"Bars of local-p attention weights over {S} source positions, blue inside "
        "the window of 2D + 1 positions and zero outside, over global attention's weights in "
        "grey, and how many scores the window computes. Try: move the centre p and watch the "
        "window follow it, stopping at the ends; widen D and the window takes in more of "
        "the positions global attention weighs, at a higher cost.", [centre, half], draw_png,
        expected, title="Local-p attention")


# --------------------------------------------------------------- 7. RoPE


def rope_figure(query: torch.Tensor | None = None, key: torch.Tensor | None = None,
                m: int = 5, n: int = 2, max_shift: int = 30) -> InteractiveFigure:
    """Chapter 7: rotary position embedding. Shift both positions (m + s, n + s): every
    pair of features of the query and of the key turns, each pair at its own speed, and
    the score q·k stays the same. query, key (d,) with d even; default d = 8, seeded."""
    g = torch.Generator().manual_seed(0)
    if query is None:
        query = torch.randn(8, generator=g)
    if key is None:
        key = torch.randn(8, generator=g)
    q = _float_tensor(query, "query", ("d",))
    k = _float_tensor(key, "key", ("d",))
    if k.shape != q.shape or len(q) % 2:
        raise ValueError(f"query and key should have the same even size d, got "
                         f"{tuple(q.shape)} and {tuple(k.shape)}")
    for value, name in ((m, "m"), (n, "n"), (max_shift, "max_shift")):
        check_positive_int(value, name, minimum=0)
    shift = slider("shift", "shift both positions by s", range(max_shift + 1), 0)
    pairs = len(q) // 2

    def expected(st):
        s = st["shift"]
        qr = apply_rope(q[None], positions=torch.tensor([m + s]))[0]  # (d,) at position m + s
        kr = apply_rope(k[None], positions=torch.tensor([n + s]))[0]  # (d,) at position n + s
        vectors = {f"pair{i}": [{"who": who, "x": rounded(v[2 * i]), "y": rounded(v[2 * i + 1])}
                                for who, v in (("query", qr), ("key", kr))]
                   for i in range(pairs)}
        return {**vectors, "score": [{"score": rounded(qr @ kr)}]}

    rows = {"vectors": [], "score": []}
    for s in shift.values:
        data = expected({"shift": s})
        rows["score"] += [{**rec, "s": s} for rec in data["score"]]
        rows["vectors"] += [{**rec, "pair": i, "s": s}
                            for i in range(pairs) for rec in data[f"pair{i}"]]
    setting = shift.matches("s")
    lim = float(max(q.abs().max(), k.abs().max())) * 1.5
    scale = alt.Scale(domain=[-lim, lim])
    colour = alt.Color("who:N", title=None, scale=alt.Scale(domain=["query", "key"]))

    def plane(i):
        vec = alt.Chart(alt.Data(values=rows["vectors"])).transform_filter(
            f"datum.pair == {i} && {setting}").transform_calculate(x0="0", y0="0")
        arrows = vec.mark_rule(strokeWidth=2).encode(
            x=alt.X("x0:Q", scale=scale, title=None), y=alt.Y("y0:Q", scale=scale, title=None),
            x2="x:Q", y2="y:Q", color=colour)
        tips = vec.mark_point(filled=True, size=50).encode(x="x:Q", y="y:Q", color=colour)
        return alt.layer(arrows, tips.properties(name=f"pair{i}")).properties(
            width=95, height=95, title=f"pair {i}")

    score = alt.Chart(alt.Data(values=rows["score"])).transform_filter(setting)
    line = alt.Chart(alt.Data(values=rows["score"])).mark_line(color="#999999").encode(
        x=alt.X("s:Q", title="shift s"), y=alt.Y("score:Q", title="score q·k"))
    now = score.mark_point(filled=True, size=80, color="#e45756").encode(
        x="s:Q", y="score:Q", tooltip=[alt.Tooltip("score:Q", format=".4f")])
    scores = alt.layer(line, now.properties(name="score")).properties(
        width=WIDTH + 150, height=90,
        title=f"the score at positions m = {m} + s, n = {n} + s")
    chart = alt.vconcat(alt.hconcat(*[plane(i) for i in range(pairs)]), scores).add_params(
        shift.param())

    def draw_png(st):
        data = expected(st)
        fig, axes = plt.subplots(1, pairs, figsize=(1.8 * pairs, 2))
        for i, ax in enumerate(axes):
            for j, who in enumerate(("query", "key")):
                v = data[f"pair{i}"][j]
                ax.plot([0, v["x"]], [0, v["y"]], color=f"C{j}", label=who)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=f"pair {i}",
                   xticks=[], yticks=[])
        axes[0].legend(fontsize=7)
        fig.suptitle(f"shift s = {st['shift']}: score q·k = {data['score'][0]['score']:.4f}")
        return fig

    return InteractiveFigure(
        chart, f"The {pairs} feature pairs of a query at position m = {m} + s and a key at "
        f"position n = {n} + s, each pair drawn as an arrow in its plane, and the score q·k "
        "against the shift s. Try: drag the shift: every pair turns, the first pair fastest, "
        "but query and key turn together, so the angle between them and the score stay the "
        "same.", [shift], draw_png, expected, title="RoPE")


# --------------------------------------------------------------- 11. online softmax


def online_softmax_states(scores: torch.Tensor, values: torch.Tensor, block_size: int):
    """After each tile of ``block_size`` keys: the running max m, the running sum
    l = sum exp(s - m) and the output acc / l, as tiled attention keeps them.
    scores (S,), values (S,) -> a list of (m, l, output) per tile."""
    m, l, acc = -math.inf, 0.0, 0.0  # noqa: E741
    states = []
    for j in range(0, len(scores), block_size):
        s, v = scores[j:j + block_size], values[j:j + block_size]
        m_new = max(m, float(s.max()))
        p = torch.exp(s - m_new)
        alpha = math.exp(m - m_new)  # rescales what was summed under the old maximum
        l, acc, m = l * alpha + float(p.sum()), acc * alpha + float(p @ v), m_new  # noqa: E741
        states.append((m, l, acc / l))
    return states


def online_softmax_figure(query: torch.Tensor | None = None, keys: torch.Tensor | None = None,
                          values: torch.Tensor | None = None, block_size: int = 4
                          ) -> InteractiveFigure:
    """Chapter 11: step through the tiles of keys as tiled (flash) attention does: the
    scores seen so far, the running max m, the running sum l and the output. query (d,),
    keys (S, d), values (S,) one number per key; default S = 16, d = 8, tiles of 4."""
    g = torch.Generator().manual_seed(0)
    query = torch.randn(8, generator=g) if query is None else query
    keys = torch.randn(16, 8, generator=g) if keys is None else keys
    values = torch.randn(16, generator=g) if values is None else values
    q = _float_tensor(query, "query", ("d",))
    k = _float_tensor(keys, "keys", ("S", "d"))
    v = _float_tensor(values, "values", ("S",))
    if k.shape[1] != len(q) or len(v) != len(k):
        raise ValueError(f"keys should be (S, d) with d = {len(q)} and values (S,) with the "
                         f"same S, got {tuple(k.shape)} and {tuple(v.shape)}")
    check_positive_int(block_size, "block_size")
    S = len(k)
    scores = k @ q / math.sqrt(len(q))  # (S,)
    states = online_softmax_states(scores, v, block_size)
    tiles = slider("tiles", "tiles read", range(1, len(states) + 1), 1)
    final = naive_attention(q[None], k, v[:, None])[0, 0]  # the whole softmax at once

    def expected(st):
        t = st["tiles"]
        m, l, out = states[t - 1]  # noqa: E741
        seen = t * block_size
        return {"scores": [{"pos": j, "s": rounded(scores[j]), "seen": j < seen}
                           for j in range(S)],
                "state": [{"name": "running max m", "value": rounded(m)},
                          {"name": "running sum l", "value": rounded(l)},
                          {"name": "output so far", "value": rounded(out)},
                          {"name": "output of full attention", "value": rounded(final)}]}

    rows = {"scores": [], "state": []}
    for t in tiles.values:
        for mark, recs in expected({"tiles": t}).items():
            rows[mark] += [{**rec, "t": t} for rec in recs]
    setting = tiles.matches("t")
    bars = alt.Chart(alt.Data(values=rows["scores"]), name="scores").mark_bar().encode(
        x=alt.X("pos:O", title="key position"), y=alt.Y("s:Q", title="score q·k / √d"),
        color=alt.condition("datum.seen", alt.value("#4c78a8"), alt.value("#dddddd")),
    ).transform_filter(setting)
    state = alt.Chart(alt.Data(values=rows["state"])).transform_filter(setting)
    rule = state.transform_filter("datum.name == 'running max m'").mark_rule(
        color="#e45756", strokeDash=[4, 2]).encode(y="value:Q")
    panel = alt.layer(bars, rule).properties(
        width=WIDTH + 60, height=WIDTH - 70,
        title=f"tiles of {block_size} keys: read (blue) and not yet (grey); m (red)")
    table = state.mark_text(align="left", fontSize=12).encode(
        y=alt.Y("name:N", title=None, sort=None, axis=alt.Axis(domain=False, ticks=False)),
        text=alt.Text("value:Q", format=".4f")).properties(
        name="state", width=70, height=WIDTH - 140, title="state")
    chart = alt.hconcat(panel, table).add_params(tiles.param())

    def draw_png(st):
        data = expected(st)
        fig, ax = plt.subplots(figsize=(6, 2.8))
        ax.bar(range(S), [r["s"] for r in data["scores"]],
               color=["C0" if r["seen"] else "0.85" for r in data["scores"]])
        ax.axhline(data["state"][0]["value"], color="C3", ls="--")
        ax.set(xlabel="key position", ylabel="score",
               title=", ".join(f"{r['name']} {r['value']:.3f}" for r in data["state"][:3]))
        return fig

    return InteractiveFigure(
        chart, f"Bars of the {S} scores of one query, coloured once their tile of "
        f"{block_size} keys has been read, with the running maximum as a red line, and the "
        "running max, running sum and output so far as numbers. Try: step through the tiles: "
        "when a tile brings a larger score the maximum jumps and the sum is rescaled; after "
        "the last tile the output equals full attention's.", [tiles], draw_png, expected,
        title="Online softmax")

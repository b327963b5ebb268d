"""Figures of chapters 1-4: scores, temperature, bandwidth, masks. No trained model.

Each builder computes its data with the package (``attnbook.similarity``,
``attnbook.softmax``, ``attnbook.kernel_regression``, ``attnbook.attention``) at every
setting of its controls (or, for the bandwidth, ships the data and a formula that the
browser test checks against ``nadaraya_watson``), and returns an ``InteractiveFigure``.
"""

from __future__ import annotations

import math

import altair as alt
import matplotlib.pyplot as plt
import numpy as np
import torch

from attnbook.attention import causal_mask, masked_softmax, padding_mask
from attnbook.data.regression import make_regression_data
from attnbook.efficient import sliding_window_mask
from attnbook.interactive.figure import (
    WIDTH,
    InteractiveFigure,
    checkbox,
    grid,
    rounded,
    select,
    slider,
)
from attnbook.kernel_regression import nadaraya_watson
from attnbook.shapes import check_not_nan, check_shape, check_tensor
from attnbook.similarity import pairwise_cosine, score_matrix
from attnbook.softmax import entropy, softmax


def _names(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{i + 1}" for i in range(n)]


def _float_tensor(x, name: str, shape) -> torch.Tensor:
    check_tensor(x, name, "float")
    check_shape(x, shape, name)
    check_not_nan(x, name)
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): nothing to show")
    return x.detach().double().cpu()


# --------------------------------------------------------------- 1. a query you move

def query_scores_figure(keys: torch.Tensor | None = None) -> InteractiveFigure:
    """Chapter 1: move a query around the plane (angle, length) and watch its dot-product
    and cosine scores against four fixed keys. keys (S, 2); default four keys."""
    if keys is None:
        keys = torch.tensor([[2.0, 0.0], [1.0, 1.5], [-1.0, 1.0], [0.5, -1.5]])
    k = _float_tensor(keys, "keys", ("S", 2))
    names = _names(len(k), "k")
    angle = slider("angle", "query angle (degrees)", range(0, 360, 15), 45)
    qlen = slider("qlen", "query length", (0.5, 1.0, 1.5, 2.0), 1.0)

    def expected(s):
        a = math.radians(s["angle"])
        q = torch.tensor([[math.cos(a), math.sin(a)]], dtype=k.dtype) * s["qlen"]
        dots, cosines = score_matrix(q, k)[0], pairwise_cosine(q, k)[0]  # (S,) each
        return {"query": [{"x": rounded(q[0, 0]), "y": rounded(q[0, 1])}],
                "dot": [{"key": n, "dot": rounded(v)}
                        for n, v in zip(names, dots, strict=True)],
                "cosine": [{"key": n, "cos": rounded(v)}
                           for n, v in zip(names, cosines, strict=True)]}

    rows = {"query": [], "dot": [], "cosine": []}
    for a, r in grid(angle.values, qlen.values):
        for mark, recs in expected({"angle": a, "qlen": r}).items():
            rows[mark] += [{**rec, "a": a, "r": r} for rec in recs]
    setting = f"({angle.matches('a')}) && ({qlen.matches('r')})"
    lim = float(max(k.abs().max(), 2.0)) + 0.5
    axis = alt.Scale(domain=[-lim, lim])
    key_points = alt.Chart(alt.Data(values=[
        {"key": n, "x": rounded(x), "y": rounded(y)}
        for n, (x, y) in zip(names, k.tolist(), strict=True)]))
    keys_layer = key_points.mark_point(filled=True, size=60, color="#4c78a8").encode(
        x=alt.X("x:Q", scale=axis), y=alt.Y("y:Q", scale=axis)) + key_points.mark_text(
        dx=10, align="left").encode(x="x:Q", y="y:Q", text="key:N")
    query = alt.Chart(alt.Data(values=rows["query"]), name="query").mark_point(
        filled=True, size=90, color="#e45756", shape="diamond").encode(
        x="x:Q", y="y:Q").transform_filter(setting)
    plane = alt.layer(keys_layer, query).properties(
        width=WIDTH - 50, height=WIDTH - 50, title="keys (blue) and the query (red)")

    def bars(mark, fld, title):
        return alt.Chart(alt.Data(values=rows[mark]), name=mark).mark_bar().encode(
            y=alt.Y("key:N", title=None), x=alt.X(f"{fld}:Q", title=title,
                                                    scale=alt.Scale(domain=[-6, 6] if mark == "dot"
                                                                    else [-1, 1])),
            color=alt.condition(f"datum.{fld} > 0", alt.value("#4c78a8"), alt.value("#e45756")),
        ).transform_filter(setting).properties(width=WIDTH - 60, height=90)

    chart = alt.hconcat(plane, alt.vconcat(bars("dot", "dot", "dot product q·k"),
                                           bars("cosine", "cos", "cosine similarity"))
                        ).add_params(angle.param(), qlen.param())

    def draw_png(s):
        data = expected(s)
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(7, 3))
        ax.scatter(k[:, 0].numpy(), k[:, 1].numpy())
        for n, (x, y) in zip(names, k.tolist(), strict=True):
            ax.annotate(n, (x, y), xytext=(4, 4), textcoords="offset points")
        ax.scatter(data["query"][0]["x"], data["query"][0]["y"], marker="D", color="C3")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title="keys and query")
        ys = np.arange(len(names))
        bx.barh(ys + 0.2, [d["dot"] for d in data["dot"]], 0.4, label="dot product")
        bx.barh(ys - 0.2, [d["cos"] for d in data["cosine"]], 0.4, label="cosine")
        bx.set(yticks=ys, yticklabels=names, title="scores")
        bx.legend()
        return fig

    return InteractiveFigure(
        chart, "Four fixed keys (blue) and a query (red) in the plane, with the query's "
        "dot-product and cosine scores against each key. Try: turn the query with the angle "
        "slider and watch which key scores highest; then change only its length: the dot "
        "products grow with it, the cosines do not move.",
        [angle, qlen], draw_png, expected, title="A query you move")


# --------------------------------------------------------------- 2. temperature

TEMPERATURES = tuple(rounded(t / 10, 2) for t in range(1, 51))  # 0.1 .. 5.0


def temperature_figure(scores: torch.Tensor | None = None,
                       labels: list[str] | None = None) -> InteractiveFigure:
    """Chapter 2: the temperature T of softmax(scores / T): the weights and their entropy,
    from nearly one-hot (small T, the argmax) to nearly uniform (large T). scores (S,)."""
    if scores is None:
        scores = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    s = _float_tensor(scores, "scores", ("S",))
    names = list(labels) if labels is not None else _names(len(s), "k")
    if len(names) != len(s):
        raise ValueError(f"labels should name the {len(s)} scores, got {len(names)} labels")
    temperature = slider("temperature", "temperature T", TEMPERATURES, 1.0)
    h_max = math.log2(len(s))

    def expected(st):
        w = softmax(s, temperature=st["temperature"])  # (S,)
        return {"weights": [{"key": n, "w": rounded(v)} for n, v in zip(names, w, strict=True)],
                "entropy": [{"bits": rounded(entropy(w, base=2))}]}

    rows = {"weights": [], "entropy": []}
    for t in temperature.values:
        for mark, recs in expected({"temperature": t}).items():
            rows[mark] += [{**rec, "t": t} for rec in recs]
    setting = temperature.matches("t")
    weights = alt.Chart(alt.Data(values=rows["weights"]), name="weights").mark_bar().encode(
        x=alt.X("key:N", sort=names, title="key"),
        y=alt.Y("w:Q", scale=alt.Scale(domain=[0, 1]), title="weight"),
        tooltip=["key:N", alt.Tooltip("w:Q", format=".3f")],
    ).transform_filter(setting).properties(width=WIDTH, height=WIDTH - 60,
                                           title="softmax(scores / T)")
    bits = alt.Chart(alt.Data(values=rows["entropy"]), name="entropy").mark_bar(
        color="#f58518").encode(
        y=alt.Y("bits:Q", scale=alt.Scale(domain=[0, h_max]),
                title=f"entropy (bits; 0 = argmax, {h_max:.2f} = uniform)"),
        tooltip=[alt.Tooltip("bits:Q", format=".3f")],
    ).transform_filter(setting).properties(width=40, height=WIDTH - 60, title="entropy")
    chart = alt.hconcat(weights, bits).add_params(temperature.param())

    def draw_png(st):
        data = expected(st)
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(5, 3), width_ratios=(5, 1))
        ax.bar(names, [d["w"] for d in data["weights"]])
        ax.set(ylim=(0, 1), ylabel="weight", title=f"softmax(scores / {st['temperature']})")
        bx.bar([""], [data["entropy"][0]["bits"]], color="C1")
        bx.set(ylim=(0, h_max), title="entropy (bits)")
        return fig

    return InteractiveFigure(
        chart, f"Bars of the softmax weights of {len(s)} scores at temperature T, and their "
        "entropy in bits. Try: slide T down towards 0.1 and the weights become one-hot on the "
        "largest score (entropy near 0); slide it up to 5 and they flatten towards uniform "
        f"(entropy near {h_max:.2f} bits).", [temperature], draw_png, expected,
        title="Temperature")


# --------------------------------------------------------------- 3. bandwidth

BANDWIDTHS = tuple(rounded(b / 20, 2) for b in range(1, 21))  # 0.05 .. 1.0


def bandwidth_figure(keys: torch.Tensor | None = None, values: torch.Tensor | None = None,
                     queries: torch.Tensor | None = None) -> InteractiveFigure:
    """Chapter 3: the bandwidth h of Nadaraya-Watson regression with a Gaussian kernel:
    the fit through the points and its attention weights (queries x keys). keys, values
    (S,) the training points; queries (T,) where the fit is drawn. Defaults: 20 points of
    chapter 3's data set, 40 queries on [0, 5]. The page computes the weights with the
    kernel's formula, softmax(-(q - k)^2 / (2 h^2)); the tests check it against
    ``nadaraya_watson`` at several h."""
    if keys is None or values is None:
        data = make_regression_data(n_train=20, n_test=1, seed=0)
        keys, values = data.x_train, data.y_train
    if queries is None:
        queries = torch.linspace(0, 5, 40, dtype=keys.dtype)
    x = _float_tensor(keys, "keys", ("S",))
    y = _float_tensor(values, "values", ("S",))
    check_shape(y, (len(x),), "values")
    q = _float_tensor(queries, "queries", ("T",))
    bandwidth = slider("bandwidth", "bandwidth h", BANDWIDTHS, 0.3)

    def expected(st):
        fit, w = nadaraya_watson(q, x, y, bandwidth=st["bandwidth"])  # (T,), (T, S)
        return {"fit": [{"i": i, "fit": rounded(v)} for i, v in enumerate(fit)],
                "weights": [{"i": i, "j": j, "w": rounded(w[i, j])}
                            for i in range(len(q)) for j in range(len(x))]}

    pairs = [{"i": i, "j": j, "q": rounded(qi, 6), "k": rounded(kj, 6), "y": rounded(yj, 6)}
             for i, qi in enumerate(q.tolist())
             for j, (kj, yj) in enumerate(zip(x.tolist(), y.tolist(), strict=True))]
    weighted = alt.Chart(alt.Data(values=pairs)).transform_calculate(
        s="-pow(datum.q - datum.k, 2) / (2 * bandwidth * bandwidth)"
    ).transform_joinaggregate(top="max(s)", groupby=["i"]).transform_calculate(
        e="exp(datum.s - datum.top)"  # minus the row's maximum: stable for a tiny h
    ).transform_joinaggregate(total="sum(e)", groupby=["i"]).transform_calculate(
        w="datum.e / datum.total", wy="datum.e / datum.total * datum.y")
    points = alt.Chart(alt.Data(values=[{"k": rounded(a), "y": rounded(b)} for a, b in
                                        zip(x.tolist(), y.tolist(), strict=True)])).mark_point(
        color="#4c78a8").encode(x=alt.X("k:Q", title="x"), y=alt.Y("y:Q", title="y"))
    fit = weighted.transform_aggregate(
        fit="sum(wy)", groupby=["i", "q"]).mark_line(color="#e45756").encode(
        x="q:Q", y="fit:Q")
    fit_panel = alt.layer(points, fit.properties(name="fit")).properties(
        width=WIDTH, height=WIDTH - 40, title="the points and the fit Σᵢ wᵢ yᵢ")
    heat = weighted.mark_rect().encode(
        x=alt.X("j:O", title="key i (sorted by x)", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("i:O", title="query (x from 0 to 5)", axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("w:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), title="weight"),
        tooltip=[alt.Tooltip("w:Q", format=".3f")],
    ).properties(name="weights", width=WIDTH - 60, height=WIDTH - 40, title="attention weights")
    chart = alt.hconcat(fit_panel, heat).add_params(bandwidth.param()).resolve_scale(
        color="independent")

    def draw_png(st):
        data = expected(st)
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(7, 3))
        ax.scatter(x.numpy(), y.numpy(), s=12)
        ax.plot(q.numpy(), [d["fit"] for d in data["fit"]], color="C3")
        ax.set(xlabel="x", ylabel="y", title=f"Nadaraya–Watson fit, h = {st['bandwidth']}")
        w = np.array([d["w"] for d in data["weights"]]).reshape(len(q), len(x))
        bx.imshow(w, cmap="Blues", aspect="auto", vmin=0, vmax=1)
        bx.set(xlabel="key", ylabel="query", title="attention weights")
        return fig

    return InteractiveFigure(
        chart, "Training points with the Nadaraya–Watson fit through them, and the "
        "attention weights of every query (rows) over the training points (columns). Try: "
        "shrink the bandwidth h to 0.05 and the fit jumps from point to point while most rows "
        "of weights become a single dark cell; widen it to 1 and the fit flattens while each "
        "row spreads over many points.", [bandwidth], draw_png, expected, title="Bandwidth")


# --------------------------------------------------------------- 4. masks and 1/sqrt(d)

MASK_KINDS = ("none", "padding", "causal", "window")


def _mask(kind: str, n: int, T: int, S: int) -> torch.Tensor | None:
    if kind == "padding":
        return padding_mask(torch.tensor([n]), S)  # (1, S): the same keys for every query
    if kind == "causal":
        return causal_mask(T, S)
    if kind == "window":
        return sliding_window_mask(T, n)
    return None


def mask_figure(queries: torch.Tensor | None = None,
                keys: torch.Tensor | None = None) -> InteractiveFigure:
    """Chapter 4: a mask (none, padding to a valid length, causal, a causal window) and the
    masked softmax weights, with or without the 1/sqrt(d) scale. queries (T, d), keys
    (T, d) (a window needs as many keys as queries); default T = 6, d = 16, seeded."""
    g = torch.Generator().manual_seed(0)
    if queries is None:
        queries = torch.randn(6, 16, generator=g)
    if keys is None:
        keys = torch.randn(6, 16, generator=g)
    q = _float_tensor(queries, "queries", ("T", "d"))
    k = _float_tensor(keys, "keys", ("T", "d"))
    check_shape(k, q.shape, "keys")
    T, d = q.shape
    kind = select("kind", "mask", MASK_KINDS, "causal")
    valid = slider("valid", "valid length (padding)", range(1, T + 1), max(T - 2, 1))
    win = slider("win", "window size (window)", range(1, T + 1), min(3, T))
    scaled = checkbox("scaled", "divide the scores by √d", True)

    def expected(st):
        n = {"padding": st["valid"], "window": st["win"]}.get(st["kind"], 0)
        scores = score_matrix(q, k) / (math.sqrt(d) if st["scaled"] else 1.0)  # (T, T)
        mask = _mask(st["kind"], n, T, T)
        w = masked_softmax(scores, mask=mask)  # (T, T), masked entries exactly 0
        keep = torch.ones(T, T, dtype=torch.bool) if mask is None else mask.expand(T, T)
        cells = [{"i": i, "j": j, "keep": bool(keep[i, j]), "w": rounded(w[i, j])}
                 for i in range(T) for j in range(T)]
        return {"mask": cells, "weights": cells}

    rows = []
    settings = [("none", 0), ("causal", 0)] + [("padding", n) for n in valid.values] + [
        ("window", n) for n in win.values]
    for (kd, n), sc in grid(settings, (False, True)):
        st = {"kind": kd, "valid": n, "win": n, "scaled": sc}
        rows += [{**rec, "kind": kd, "n": n, "sc": sc} for rec in expected(st)["mask"]]
    setting = ("datum.kind == kind && datum.sc == scaled && datum.n == "
               "(kind == 'padding' ? valid : kind == 'window' ? win : 0)")
    axes = {"x": alt.X("j:O", title="key"), "y": alt.Y("i:O", title="query")}
    cells = alt.Data(values=rows)
    mask = alt.Chart(cells, name="mask").mark_rect(
        stroke="white").encode(
        **axes, color=alt.Color("keep:N", scale=alt.Scale(domain=[False, True],
                                                          range=["#eeeeee", "#4c78a8"]),
                                legend=alt.Legend(title="may attend", orient="bottom")),
    ).transform_filter(setting).properties(width=WIDTH - 90, height=WIDTH - 90, title="mask")
    base = alt.Chart(cells).transform_filter(setting)
    heat = base.mark_rect().encode(
        **axes, color=alt.Color("w:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                                legend=None))
    text = base.mark_text(fontSize=9).encode(
        **axes, text=alt.Text("w:Q", format=".2f"),
        color=alt.condition("datum.w > 0.5", alt.value("white"), alt.value("black")))
    weights = alt.layer(heat.properties(name="weights"), text).properties(
        width=WIDTH - 30, height=WIDTH - 90, title="weights (rows sum to 1)")
    chart = alt.hconcat(mask, weights).add_params(
        kind.param(), valid.param(), win.param(), scaled.param()).resolve_scale(
        color="independent")

    def draw_png(st):
        data = expected(st)
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(6.5, 3))
        keep = np.array([c["keep"] for c in data["mask"]]).reshape(T, T)
        w = np.array([c["w"] for c in data["weights"]]).reshape(T, T)
        ax.imshow(keep, cmap="Blues", vmin=0, vmax=1.5)
        ax.set(title=f"{st['kind']} mask", xlabel="key", ylabel="query")
        bx.imshow(w, cmap="Blues", vmin=0, vmax=1)
        for i, j in np.ndindex(T, T):
            bx.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=7)
        bx.set(title="weights", xlabel="key")
        return fig

    return InteractiveFigure(
        chart, f"Two {T} by {T} grids: which keys each query may attend to under the chosen "
        "mask, and the masked softmax weights with their values. Try: switch the mask between "
        "none, padding, causal and window and watch the masked cells get weight exactly 0 "
        "while each row still sums to 1; move the valid length and the window size; untick "
        f"the division by √d (d = {d}) and the weights become much peakier.",
        [kind, valid, win, scaled], draw_png, expected, title="Masks")

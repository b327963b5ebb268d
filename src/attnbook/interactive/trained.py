"""Figures of chapters 6, 8, 9, 10 and 12, from arrays a trained model gave the chapter.

The chapter passes what it has already computed (attention weights, accuracies, logits);
these builders only arrange it, except the sampling distribution (temperature and top-k,
as ``attnbook.decoding.sample`` draws) and attention rollout (``attnbook.interpret``),
which they compute with the package at every setting.
"""

from __future__ import annotations

import math

import altair as alt
import matplotlib.pyplot as plt
import numpy as np
import torch

from attnbook.interactive.figure import WIDTH, InteractiveFigure, grid, rounded, select, slider
from attnbook.interactive.foundations import _float_tensor
from attnbook.interpret import attention_rollout
from attnbook.shapes import check_shape, check_tensor
from attnbook.softmax import softmax


def _labels(labels, n: int, name: str) -> list[str]:
    labels = [str(x) for x in labels]
    if len(labels) != n:
        raise ValueError(f"{name} should have {n} entries, got {len(labels)}")
    return labels


def _attention(weights, name: str, shape) -> torch.Tensor:
    w = _float_tensor(weights, name, shape)
    if (w < 0).any() or (w.sum(-1) - 1).abs().max() > 1e-3:
        raise ValueError(f"{name} should be attention weights: entries >= 0, rows summing to 1")
    return w


# --------------------------------------------------------------- 6. alignment


def alignment_figure(weights: torch.Tensor, source: list[str], target: list[str],
                     gold: torch.Tensor) -> InteractiveFigure:
    """Chapter 6: pick a target word, see its attention over the source words against the
    gold alignment. weights (T, S) of one sentence pair; source (S,) and target (T,) words;
    gold (T,) the aligned source position of each target word (-1: none)."""
    w = _attention(weights, "weights", ("T", "S"))
    T, S = w.shape
    src, tgt = _labels(source, S, "source"), _labels(target, T, "target")
    check_tensor(gold, "gold", "int")
    check_shape(gold, (T,), "gold")
    if ((gold < -1) | (gold >= S)).any():
        raise ValueError(f"gold should hold source positions 0 .. {S - 1} (or -1), "
                         f"got {gold.tolist()}")
    word = select("word", "target word", range(T), 0, labels=[f"{i}: {t}" for i, t in
                                                              enumerate(tgt)])

    def expected(st):
        i = st["word"]
        return {"attention": [{"pos": j, "w": rounded(w[i, j]), "gold": j == int(gold[i])}
                              for j in range(S)]}

    rows = [{**r, "t": i} for i in range(T) for r in expected({"word": i})["attention"]]
    bars = alt.Chart(alt.Data(values=[{**r, "word": f"{r['pos']}: {src[r['pos']]}"}
                                      for r in rows]), name="attention").mark_bar().encode(
        x=alt.X("word:N", sort=None, title="source word"),
        y=alt.Y("w:Q", scale=alt.Scale(domain=[0, 1]), title="attention weight"),
        color=alt.condition("datum.gold", alt.value("#f58518"), alt.value("#4c78a8")),
        tooltip=["word:N", alt.Tooltip("w:Q", format=".3f")],
    ).transform_filter(word.matches("t")).properties(
        width=2 * WIDTH, height=WIDTH - 80,
        title="attention of the chosen target word; the gold source word in orange")
    chart = bars.add_params(word.param())

    def draw_png(st):
        fig, ax = plt.subplots(figsize=(6.5, 2.8))
        data = expected(st)["attention"]
        ax.bar(range(S), [r["w"] for r in data],
               color=["C1" if r["gold"] else "C0" for r in data])
        ax.set(xticks=range(S), ylim=(0, 1), ylabel="weight",
               title=f"target word {tgt[st['word']]!r}: attention (gold in orange)")
        ax.set_xticklabels(src, rotation=45, ha="right")
        return fig

    return InteractiveFigure(
        chart, f"Bars of the attention weights of one target word over the {S} source "
        "words; the gold-aligned source word is orange. Try: pick each target word in turn "
        "and see whether its tallest bar is the orange one.", [word], draw_png, expected,
        title="Attention against the gold alignment")


# --------------------------------------------------------------- 8. heads


def head_figure(weights: torch.Tensor, accuracy_without: torch.Tensor, accuracy: float,
                tokens: list[str] | None = None) -> InteractiveFigure:
    """Chapter 8: pick a head: its weights (T, T) on one example, and the model's accuracy
    with that head switched off against all heads. weights (H, T, S); accuracy_without (H,)
    fractions in [0, 1]; accuracy the full model's; tokens (S,) to label the keys."""
    w = _attention(weights, "weights", ("H", "T", "S"))
    H, T, S = w.shape
    acc = _float_tensor(accuracy_without, "accuracy_without", (H,))
    if not 0 <= accuracy <= 1 or (acc < 0).any() or (acc > 1).any():
        raise ValueError("accuracies should be fractions between 0 and 1")
    keys = _labels(tokens, S, "tokens") if tokens is not None else [str(j) for j in range(S)]
    head = select("head", "head", range(H), 0)

    def expected(st):
        h = st["head"]
        return {"weights": [{"i": i, "j": j, "w": rounded(w[h, i, j])}
                            for i in range(T) for j in range(S)],
                "accuracy": [{"text": f"accuracy without head {h}: {float(acc[h]):.1%} "
                                      f"(all heads: {accuracy:.1%})"}]}

    rows = {"weights": [], "accuracy": []}
    for h in head.values:
        for mark, recs in expected({"head": h}).items():
            rows[mark] += [{**r, "h": h} for r in recs]
    setting = head.matches("h")
    heat = alt.Chart(alt.Data(values=[{**r, "key": f"{r['j']}: {keys[r['j']]}"}
                                      for r in rows["weights"]]), name="weights").mark_rect(
    ).encode(x=alt.X("key:N", sort=None, title="key"), y=alt.Y("i:O", title="query"),
             color=alt.Color("w:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                             title="weight"),
             tooltip=["key:N", "i:O", alt.Tooltip("w:Q", format=".3f")],
             ).transform_filter(setting).properties(width=WIDTH, height=WIDTH,
                                                    title="this head's attention weights")
    text = alt.Chart(alt.Data(values=rows["accuracy"]), name="accuracy").mark_text(
        align="left", fontSize=12).encode(text="text:N").transform_filter(setting).properties(
        width=WIDTH, height=16)
    chart = alt.vconcat(heat, text).add_params(head.param())

    def draw_png(st):
        data = expected(st)
        fig, ax = plt.subplots(figsize=(3.5, 3.5))
        ax.imshow(w[st["head"]].numpy(), cmap="Blues", vmin=0, vmax=1)
        ax.set(xlabel="key", ylabel="query", title=data["accuracy"][0]["text"])
        ax.title.set_fontsize(8)
        return fig

    return InteractiveFigure(
        chart, f"The attention weights of one of {H} heads as a heatmap (queries by keys), "
        "and the model's accuracy with that head switched off. Try: pick each head and find "
        "the one whose loss hurts most; compare its pattern with the others'.", [head],
        draw_png, expected, title="Heads")


# --------------------------------------------------------------- 9. temperature and top-k


def sampling_distribution(logits: torch.Tensor, temperature: float, top_k: int | None
                          ) -> torch.Tensor:
    """softmax(logits / temperature) over the ``top_k`` largest logits (all when None):
    the distribution ``attnbook.decoding.sample`` draws the next token from. (V,) -> (V,)."""
    if top_k is not None and top_k < len(logits):
        kth = logits.topk(top_k).values[-1]
        logits = logits.masked_fill(logits < kth, -math.inf)
    return softmax(logits, temperature=temperature)


def sampling_figure(logits: torch.Tensor, vocabulary: list[str], shown: int = 12,
                    top_ks: tuple = (1, 3, 5, 10, 0)) -> InteractiveFigure:
    """Chapter 9: temperature and top-k on the trained language model's next-token
    distribution. logits (V,) after a prompt; vocabulary (V,) the tokens; ``shown`` most
    likely tokens are drawn; top_ks the top-k settings (0 = no top-k)."""
    z = _float_tensor(logits, "logits", ("V",))
    V = len(z)
    vocab = _labels(vocabulary, V, "vocabulary")
    shown = min(shown, V)
    order = torch.argsort(z, descending=True)[:shown].tolist()  # the most likely tokens
    temperature = slider("temperature", "temperature", [t / 10 for t in range(1, 21)], 1.0)
    top_k = select("top_k", "top-k", top_ks, top_ks[-1],
                   labels=[str(k) if k else "off" for k in top_ks])

    def expected(st):
        p = sampling_distribution(z, st["temperature"], st["top_k"] or None)
        return {"probs": [{"rank": r, "p": rounded(p[v])} for r, v in enumerate(order)]}

    rows = [{**r, "t": t, "k": k, "token": repr(vocab[order[r["rank"]]])}
            for t, k in grid(temperature.values, top_k.values)
            for r in expected({"temperature": t, "top_k": k})["probs"]]
    bars = alt.Chart(alt.Data(values=rows), name="probs").mark_bar().encode(
        x=alt.X("token:N", sort=None, title=f"the {shown} most likely next tokens"),
        y=alt.Y("p:Q", scale=alt.Scale(domain=[0, 1]), title="probability"),
        tooltip=["token:N", alt.Tooltip("p:Q", format=".3f")],
    ).transform_filter(f"({temperature.matches('t')}) && ({top_k.matches('k')})").properties(
        width=2 * WIDTH, height=WIDTH - 80, title="the next-token distribution sampled from")
    chart = bars.add_params(temperature.param(), top_k.param())

    def draw_png(st):
        fig, ax = plt.subplots(figsize=(6.5, 2.8))
        ax.bar([repr(vocab[v]) for v in order], [r["p"] for r in expected(st)["probs"]])
        ax.set(ylim=(0, 1), ylabel="probability",
               title=f"temperature {st['temperature']}, top-k {st['top_k'] or 'off'}")
        return fig

    return InteractiveFigure(
        chart, f"Bars of the probabilities of the {shown} most likely next tokens. Try: "
        "lower the temperature and the distribution sharpens onto the top token; raise it "
        "and the tail grows; set top-k to 3 and every token outside the top 3 gets "
        "probability 0.", [temperature, top_k], draw_png, expected,
        title="Temperature and top-k")


# --------------------------------------------------------------- 10. ViT class token


def vit_figure(cls_weights: torch.Tensor, image: torch.Tensor) -> InteractiveFigure:
    """Chapter 10: pick a layer and a head: the class token's attention over the patches
    of one image, beside the image. cls_weights (L, H, gh, gw) over a grid of patches;
    image (h, w) greyscale."""
    w = _float_tensor(cls_weights, "cls_weights", ("L", "H", "gh", "gw"))
    img = _float_tensor(image, "image", ("h", "w"))
    L, H, gh, gw = w.shape
    layer = select("layer", "layer", range(L), L - 1)
    head = select("head", "head", range(H), 0)

    def expected(st):
        a = w[st["layer"], st["head"]]
        return {"attention": [{"r": r, "c": c, "w": rounded(a[r, c])}
                              for r in range(gh) for c in range(gw)]}

    rows = [{**rec, "l": lv, "hd": hv} for lv, hv in grid(layer.values, head.values)
            for rec in expected({"layer": lv, "head": hv})["attention"]]
    axes = {"x": alt.X("c:O", axis=None), "y": alt.Y("r:O", axis=None)}
    picture = alt.Chart(alt.Data(values=[{"r": r, "c": c, "v": rounded(img[r, c])}
                                         for r in range(img.shape[0])
                                         for c in range(img.shape[1])])).mark_rect().encode(
        **axes, color=alt.Color("v:Q", scale=alt.Scale(scheme="greys"), legend=None)
    ).properties(width=WIDTH - 80, height=WIDTH - 80, title="the image")
    heat = alt.Chart(alt.Data(values=rows), name="attention").mark_rect().encode(
        **axes, color=alt.Color("w:Q", scale=alt.Scale(scheme="oranges"), title="weight"),
        tooltip=[alt.Tooltip("w:Q", format=".3f")],
    ).transform_filter("datum.l == layer && datum.hd == head").properties(
        width=WIDTH - 80, height=WIDTH - 80, title="class token's attention over patches")
    chart = alt.hconcat(picture, heat).add_params(layer.param(), head.param()).resolve_scale(
        color="independent")

    def draw_png(st):
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(5, 2.5))
        ax.imshow(img.numpy(), cmap="gray_r")
        bx.imshow(w[st["layer"], st["head"]].numpy(), cmap="Oranges")
        ax.set(title="image", xticks=[], yticks=[])
        bx.set(title=f"layer {st['layer']}, head {st['head']}", xticks=[], yticks=[])
        return fig

    return InteractiveFigure(
        chart, f"A digit beside the class token's attention over its {gh} by {gw} patches. "
        f"Try: pick each of the {L} layers and {H} heads and see which attend to the strokes "
        "of the digit and which spread evenly.", [layer, head], draw_png, expected,
        title="Class-token attention")


# --------------------------------------------------------------- 12. raw, rollout, occlusion


def rollout_figure(weights: torch.Tensor, tokens: list[str], occlusion: torch.Tensor,
                   query: int = 0) -> InteractiveFigure:
    """Chapter 12: pick a layer: the ``query`` token's (the class token's) raw attention at
    that layer (mean over heads), attention rollout up to that layer, and occlusion (the
    drop in the model's score when each token is left out), side by side. weights
    (L, H, T, T) of one sequence; tokens (T,); occlusion (T,)."""
    w = _attention(weights, "weights", ("L", "H", "T", "T"))
    L, H, T, _ = w.shape
    names = _labels(tokens, T, "tokens")
    occ = _float_tensor(occlusion, "occlusion", (T,))
    if not (isinstance(query, int) and 0 <= query < T):
        raise ValueError(f"query should be a token position 0 .. {T - 1}, got {query!r}")
    layer = select("layer", "layer", range(L), L - 1, labels=[str(i + 1) for i in range(L)])

    def expected(st):
        lv = st["layer"]
        raw = w[lv].mean(0)[query]  # (T,): mean over heads
        rolled = attention_rollout(w[None, :lv + 1])[0, query]  # (T,)
        return {"raw": [{"pos": j, "v": rounded(raw[j])} for j in range(T)],
                "rollout": [{"pos": j, "v": rounded(rolled[j])} for j in range(T)]}

    rows = {"raw": [], "rollout": []}
    for lv in layer.values:
        for mark, recs in expected({"layer": lv}).items():
            rows[mark] += [{**r, "l": lv, "token": f"{r['pos']}: {names[r['pos']]}"}
                           for r in recs]

    def bars(values, name, title, colour, filtered=True):
        chart = alt.Chart(alt.Data(values=values), name=name).mark_bar(color=colour).encode(
            y=alt.Y("token:N", sort=None, title=None),
            x=alt.X("v:Q", title=title), tooltip=["token:N", alt.Tooltip("v:Q", format=".3f")])
        if filtered:
            chart = chart.transform_filter(layer.matches("l"))
        return chart.properties(width=130, height=14 * T)

    occlusion_rows = [{"pos": j, "v": rounded(occ[j]), "token": f"{j}: {names[j]}"}
                      for j in range(T)]
    chart = alt.hconcat(
        bars(rows["raw"], "raw", "raw attention", "#4c78a8"),
        bars(rows["rollout"], "rollout", "rollout", "#f58518"),
        bars(occlusion_rows, "occlusion", "occlusion", "#54a24b", filtered=False),
    ).add_params(layer.param())

    def draw_png(st):
        data = expected(st)
        fig, axes = plt.subplots(1, 3, figsize=(7, 0.25 * T + 1), sharey=True)
        for ax, (title, vals) in zip(axes, (("raw", [r["v"] for r in data["raw"]]),
                                            ("rollout", [r["v"] for r in data["rollout"]]),
                                            ("occlusion", occ.tolist())), strict=True):
            ax.barh(np.arange(T), vals)
            ax.set(title=title)
        axes[0].set(yticks=np.arange(T), yticklabels=names)
        axes[0].invert_yaxis()
        fig.suptitle(f"layer {st['layer'] + 1}")
        return fig

    return InteractiveFigure(
        chart, f"Three bar charts over the {T} tokens: the class token's raw attention at the "
        "chosen layer, attention rollout up to that layer, and occlusion. Try: step from the "
        "first to the last layer and compare the tokens that raw attention and rollout rank "
        "highest with those occlusion ranks highest.", [layer], draw_png, expected,
        title="Raw attention, rollout and occlusion")

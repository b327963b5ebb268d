"""attnbook.interactive: the data behind every figure is the package's, without a browser.

``figure.expected(settings)`` is what a figure must show at a setting of its controls
(tests/test_interactive_browser.py checks the live figure against it); here it is checked,
at sampled settings, against the package's functions and the formulas they implement.
Also: the mime bundle each front end gets, the book's HTML and MyST-NB plugin, the Sphinx
extension's scripts, bad input, and page weight.
"""

from __future__ import annotations

import base64
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from interactive_examples import all_figures, trained_inputs

from attnbook import interactive
from attnbook.attention import masked_softmax
from attnbook.efficient import naive_attention, tiled_attention
from attnbook.interactive import book
from attnbook.interactive.figure import VEGALITE_MIME
from attnbook.interactive.mechanisms import online_softmax_states
from attnbook.interactive.trained import sampling_distribution
from attnbook.kernel_regression import nadaraya_watson
from attnbook.positional import apply_rope

ROOT = Path(__file__).resolve().parents[1]
FIGURES = all_figures()
TOL = 1e-4  # the figures store 4 decimals


def close(a, b, tol=TOL):
    return math.isclose(float(a), float(b), abs_tol=tol)


def datasets(spec):
    """Every table of rows a spec carries (top-level datasets and inline data values)."""
    if isinstance(spec, dict):
        if isinstance(spec.get("values"), list):
            yield spec["values"]
        for name, value in spec.items():
            if name == "datasets":
                yield from value.values()
            else:
                yield from datasets(value)
    elif isinstance(spec, list):
        for item in spec:
            yield from datasets(item)


def samples(figure):
    """The defaults, and each control at its first and at its last value."""
    out = [figure.defaults]
    for c in figure.controls:
        out += [{**figure.defaults, c.name: c.values[0]}, {**figure.defaults, c.name: c.values[-1]}]
    return out


# ------------------------------------------------------------------ every figure


@pytest.mark.parametrize("name", FIGURES)
def test_figure_has_labelled_controls_a_title_and_alt_text_that_says_what_to_try(name):
    figure = FIGURES[name]
    spec = figure.spec
    assert spec["description"] == figure.alt and "Try:" in figure.alt
    assert figure.title
    params = {p["name"]: p for p in spec["params"]}
    reserved = {"width", "height", "padding", "autosize", "background", "cursor", "datum",
                "item", "event", "parent", "window", "length"}  # Vega's own names
    for c in figure.controls:
        assert c.name not in reserved
        assert params[c.name]["bind"]["name"].strip() == c.label
        assert c.value in c.values
    assert '"title": "' in json.dumps(spec)  # its panels have titles


@pytest.mark.parametrize("name", FIGURES)
def test_expected_rows_are_finite_and_the_png_fallback_draws(name):
    figure = FIGURES[name]
    for settings in samples(figure):
        for rows in figure.expected(settings).values():
            assert rows
            for row in rows:
                for v in row.values():
                    assert not isinstance(v, float) or math.isfinite(v)
    png = figure.png()
    assert png.startswith(b"\x89PNG") and len(png) < 60_000


def test_query_scores_are_dot_products_and_cosines():
    figure = FIGURES["query_scores_figure"]
    keys = torch.tensor([[2.0, 0.0], [1.0, 1.5], [-1.0, 1.0], [0.5, -1.5]])
    for settings in samples(figure):
        a, r = math.radians(settings["angle"]), settings["qlen"]
        q = torch.tensor([math.cos(a), math.sin(a)]) * r
        shown = figure.expected(settings)
        for key, d, c in zip(keys, shown["dot"], shown["cosine"], strict=True):
            assert close(d["dot"], q @ key)
            assert close(c["cos"], torch.nn.functional.cosine_similarity(q, key, dim=0))
    # the cosine does not depend on the query's length
    long = figure.expected({"angle": 30, "qlen": 2.0})["cosine"]
    assert long == figure.expected({"angle": 30, "qlen": 0.5})["cosine"]


def test_temperature_weights_and_entropy_and_their_limits():
    figure = FIGURES["temperature_figure"]
    s = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    for t in (0.1, 1.0, 2.5, 5.0):
        shown = figure.expected({"temperature": t})
        p = torch.softmax(s / t, dim=0)
        assert all(close(r["w"], v) for r, v in zip(shown["weights"], p, strict=True))
        assert close(shown["entropy"][0]["bits"], -(p * p.log2()).sum())
    assert figure.expected({"temperature": 0.1})["weights"][0]["w"] > 0.9999  # argmax
    assert figure.expected({"temperature": 5.0})["entropy"][0]["bits"] > 0.95 * math.log2(5)


def test_bandwidth_fit_and_weights_are_nadaraya_watson_with_a_gaussian_kernel():
    figure = FIGURES["bandwidth_figure"]
    spec_pairs = next(v for v in datasets(figure.spec) if v and "q" in v[0])
    x = torch.tensor(sorted({(p["j"], p["k"]) for p in spec_pairs}))[:, 1].double()
    y = torch.tensor(sorted({(p["j"], p["y"]) for p in spec_pairs}))[:, 1].double()
    q = torch.tensor(sorted({(p["i"], p["q"]) for p in spec_pairs}))[:, 1].double()
    for h in (0.05, 0.3, 1.0):
        shown = figure.expected({"bandwidth": h})
        w = torch.softmax(-(q[:, None] - x[None, :]) ** 2 / (2 * h * h), dim=1)  # the formula
        assert all(close(r["w"], w[r["i"], r["j"]]) for r in shown["weights"])
        assert all(close(r["fit"], (w @ y)[r["i"]]) for r in shown["fit"])
        fit = nadaraya_watson(q, x, y, h)[0]
        assert all(close(r["fit"], v) for r, v in zip(shown["fit"], fit, strict=True))
    # what the alt text promises: most rows one dark cell at h = 0.05, spread out at h = 1
    row_max = {h: torch.tensor([r["w"] for r in figure.expected({"bandwidth": h})["weights"]]
                               ).reshape(len(q), len(x)).amax(1) for h in (0.05, 1.0)}
    assert row_max[0.05].median() > 0.9 and row_max[1.0].max() < 0.3


def test_masked_weights_are_zero_where_masked_and_rows_sum_to_one():
    figure = FIGURES["mask_figure"]
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(6, 16, generator=g).double(), torch.randn(6, 16, generator=g).double()
    for kind in ("none", "padding", "causal", "window"):
        for scaled in (False, True):
            st = {"kind": kind, "valid": 3, "win": 2, "scaled": scaled}
            cells = figure.expected(st)["weights"]
            w = torch.tensor([c["w"] for c in cells]).reshape(6, 6)
            keep = torch.tensor([c["keep"] for c in cells]).reshape(6, 6)
            assert (w[~keep] == 0).all() and torch.allclose(w.sum(1), torch.ones(6), atol=1e-3)
            scores = (q @ k.T) / (4.0 if scaled else 1.0)
            ref = scores.masked_fill(~keep, -math.inf).softmax(-1)
            assert torch.allclose(w, ref.float(), atol=TOL)
    peak = {sc: torch.tensor([c["w"] for c in figure.expected(
        {"kind": "none", "valid": 3, "win": 2, "scaled": sc})["weights"]]).reshape(6, 6).amax(1)
        for sc in (False, True)}
    assert peak[False].mean() > peak[True].mean() + 0.2  # without 1/sqrt(d): peakier
    causal = figure.expected({"kind": "causal", "valid": 3, "win": 2, "scaled": True})
    assert all(c["keep"] == (c["j"] <= c["i"]) for c in causal["mask"])
    window = figure.expected({"kind": "window", "valid": 3, "win": 2, "scaled": True})
    assert all(c["keep"] == (0 <= c["i"] - c["j"] < 2) for c in window["mask"])
    padding = figure.expected({"kind": "padding", "valid": 3, "win": 2, "scaled": True})
    assert all(c["keep"] == (c["j"] < 3) for c in padding["mask"])


def test_local_p_is_a_softmax_in_the_window_times_a_gaussian():
    figure = FIGURES["local_p_figure"]
    s = torch.randn(16, generator=torch.Generator().manual_seed(0)).double()
    for p, D in ((0.0, 1), (7.5, 2), (15.0, 4), (3.5, 3)):
        rows = figure.expected({"centre": p, "half": D})["local"]
        start = min(max(round(p) - D, 0), 16 - (2 * D + 1))
        inside = torch.zeros(16, dtype=torch.bool)
        inside[start:start + 2 * D + 1] = True
        ref = masked_softmax(s, mask=inside) * torch.exp(
            -(torch.arange(16) - p) ** 2 / (2 * (D / 2) ** 2))
        assert [r["inside"] for r in rows] == inside.tolist()
        assert all(close(r["w"], v) for r, v in zip(rows, ref, strict=True))
        cost = figure.expected({"centre": p, "half": D})["cost"][0]["text"]
        assert cost.startswith(f"scores computed: {2 * D + 1} of 16")


def test_rope_turns_each_pair_and_keeps_the_score():
    figure = FIGURES["rope_figure"]
    g = torch.Generator().manual_seed(0)
    q = torch.randn(8, generator=g).double()  # the key is drawn after it
    scores = [figure.expected({"shift": s})["score"][0]["score"] for s in (0, 7, 30)]
    assert max(scores) - min(scores) < 2 * TOL  # the score stays
    for s in (0, 7, 30):
        shown = figure.expected({"shift": s})
        qr = apply_rope(q[None], positions=torch.tensor([5 + s]))[0]
        for i in range(4):  # pair i turned by (5 + s) * 10000^(-2i/8)
            angle = (5 + s) * 10000 ** (-2 * i / 8)
            c, sn = math.cos(angle), math.sin(angle)
            x, y = q[2 * i], q[2 * i + 1]
            assert close(shown[f"pair{i}"][0]["x"], c * x - sn * y)
            assert close(shown[f"pair{i}"][0]["y"], sn * x + c * y)
            assert close(shown[f"pair{i}"][0]["x"], qr[2 * i])
    first, last = figure.expected({"shift": 0}), figure.expected({"shift": 1})
    assert first["pair0"] != last["pair0"]  # the pairs do move


def test_online_softmax_states_match_attention_over_the_tiles_read():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(8, generator=g).double(), torch.randn(16, 8, generator=g).double(),
               torch.randn(16, generator=g).double())
    scores = k @ q / math.sqrt(8)
    states = online_softmax_states(scores, v, 4)
    for t, (m, total, out) in enumerate(states, start=1):
        seen = scores[:4 * t]
        assert close(m, seen.max()) and close(total, torch.exp(seen - seen.max()).sum())
        assert close(out, naive_attention(q[None], k[:4 * t], v[:4 * t, None])[0, 0])
    assert close(states[-1][2], tiled_attention(q[None], k, v[:, None], block_size=4)[0, 0])
    figure = FIGURES["online_softmax_figure"]
    last = figure.expected({"tiles": 4})["state"]
    assert close(last[2]["value"], last[3]["value"])  # after the last tile: full attention
    assert sum(r["seen"] for r in figure.expected({"tiles": 2})["scores"]) == 8


def test_trained_figures_show_the_arrays_they_were_given():
    inputs = trained_inputs()
    a = inputs["alignment_figure"]
    rows = FIGURES["alignment_figure"].expected({"word": 2})["attention"]
    assert all(close(r["w"], a["weights"][2, r["pos"]]) for r in rows)
    assert [r["gold"] for r in rows] == [j == 2 for j in range(5)]
    h = inputs["head_figure"]
    shown = FIGURES["head_figure"].expected({"head": 1})
    assert all(close(r["w"], h["weights"][1, r["i"], r["j"]]) for r in shown["weights"])
    assert "52.0%" in shown["accuracy"][0]["text"] and "98.0%" in shown["accuracy"][0]["text"]
    vit = inputs["vit_figure"]
    shown = FIGURES["vit_figure"].expected({"layer": 1, "head": 0})["attention"]
    assert all(close(r["w"], vit["cls_weights"][1, 0, r["r"], r["c"]]) for r in shown)


def test_sampling_distribution_is_what_decoding_sample_draws_from():
    logits = trained_inputs()["sampling_figure"]["logits"]
    for t, k in ((0.5, 3), (1.0, None), (2.0, 1)):
        p = sampling_distribution(logits, t, k)
        scaled = logits / t  # decoding.sample's pick: top-k on logits / T, then softmax
        if k is not None:
            scaled = scaled.masked_fill(scaled < scaled.topk(k).values[-1], -math.inf)
        assert torch.allclose(p, torch.softmax(scaled, -1), atol=1e-6)
        assert (p > 0).sum() == (k or len(logits))
    figure = FIGURES["sampling_figure"]
    rows = figure.expected({"temperature": 1.0, "top_k": 3})["probs"]
    assert sum(r["p"] > 0 for r in rows) == 3 and close(sum(r["p"] for r in rows), 1, 1e-3)


def test_rollout_is_the_product_of_residual_maps():
    w = trained_inputs()["rollout_figure"]["weights"].double()  # (L, H, T, T)
    figure = FIGURES["rollout_figure"]
    R = torch.eye(6, dtype=w.dtype)
    for layer in range(3):
        A = (w[layer].mean(0) + torch.eye(6, dtype=w.dtype)) / 2
        R = A @ R
        shown = figure.expected({"layer": layer})
        assert all(close(r["v"], R[0, r["pos"]]) for r in shown["rollout"])
        assert all(close(r["v"], w[layer].mean(0)[0, r["pos"]]) for r in shown["raw"])


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("call, message", [
    (lambda: interactive.temperature_figure(torch.tensor([1, 2])), "float"),
    (lambda: interactive.temperature_figure(torch.tensor([1.0, math.nan])), "nan"),
    (lambda: interactive.temperature_figure(torch.ones(2, 3)), "scores"),
    (lambda: interactive.query_scores_figure(torch.ones(3, 3)), "keys"),
    (lambda: interactive.bandwidth_figure(torch.ones(4), torch.ones(5)), "values"),
    (lambda: interactive.local_p_figure(torch.ones(5), max_half_width=3), "max_half_width"),
    (lambda: interactive.rope_figure(torch.ones(7), torch.ones(7)), "even"),
    (lambda: interactive.alignment_figure(torch.ones(2, 3), ["a"] * 3, ["b"] * 2,
                                          torch.tensor([0, 1])), "attention weights"),
    (lambda: interactive.alignment_figure(torch.full((2, 3), 1 / 3), ["a"] * 3, ["b"] * 2,
                                          torch.tensor([0, 5])), "gold"),
    (lambda: interactive.sampling_figure(torch.ones(3), ["a", "b"]), "vocabulary"),
    (lambda: interactive.rollout_figure(torch.full((2, 1, 3, 3), 1 / 3), ["a", "b", "c"],
                                        torch.ones(3), query=3), "query"),
])
def test_bad_input_is_refused_in_words(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


# ------------------------------------------------------------------ where it renders


def test_the_bundle_has_the_vegalite_spec_for_jupyterlab_and_a_png_for_the_rest():
    figure = FIGURES["temperature_figure"]
    data, metadata = figure._repr_mimebundle_()
    assert set(data) == {VEGALITE_MIME, "image/png", "text/plain"}
    assert "text/html" not in data  # JupyterLab would prefer it to its own Vega
    assert data[VEGALITE_MIME] == figure.spec
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    assert metadata[VEGALITE_MIME]["attnbook"]["png"] == data["image/png"]
    assert data["text/plain"] == figure.alt


def test_on_colab_the_bundle_is_altairs_html(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", SimpleNamespace())
    data = FIGURES["mask_figure"]._repr_mimebundle_()
    assert set(data) == {"text/html", "text/plain"} and "vegaEmbed" in data["text/html"]


def test_figure_html_holds_the_png_and_a_spec_that_cannot_close_its_script_tag():
    spec = {"description": "a </script> here", "mark": "bar"}
    html = book.figure_html(spec, 'say "hi" & <try>', "data:image/png;base64,AAAA")
    assert html.count("</script>") == 1 and "<\\/script>" in html
    assert 'aria-label="say &quot;hi&quot; &amp; &lt;try&gt;"' in html
    assert '<img src="data:image/png;base64,AAAA"' in html
    body = html.split('type="application/json"')[1].split(">", 1)[1].rsplit("</script>", 1)[0]
    assert json.loads(body.replace("<\\/", "</")) == spec


def test_myst_nb_renders_the_vegalite_output_as_the_books_html():
    from myst_nb.core.render import MimeData, get_mime_priority, load_mime_renders

    assert book.VegaLiteRenderer in load_mime_renders(), "pip install -e . (the entry point)"
    html_order = get_mime_priority("html", [])
    assert html_order.index(VEGALITE_MIME) < html_order.index("image/png")
    assert VEGALITE_MIME not in get_mime_priority("latex", [])  # print: the PNG
    figure = FIGURES["rope_figure"]
    data, metadata = figure._repr_mimebundle_()
    nodes = book.VegaLiteRenderer.handle_mime(None, MimeData(
        VEGALITE_MIME, data[VEGALITE_MIME], output_metadata=metadata), False)
    html = nodes[0].astext()
    assert html == book.figure_html(figure.spec, figure.alt,
                                    "data:image/png;base64," + data["image/png"])
    assert book.VegaLiteRenderer.handle_mime(None, MimeData("text/plain", "x"), False) is None


def test_the_scripts_are_added_to_pages_with_a_figure_only():
    added = []
    app = SimpleNamespace(builder=SimpleNamespace(
        add_js_file=lambda f, **kw: added.append((f, kw["priority"]))))
    book._load_scripts(app, "intro", "page.html", {"body": "<p>no figure</p>"}, None)
    assert added == []
    book._load_scripts(app, "ch2", "page.html", {"body": book.figure_html({}, "x")}, None)
    assert [f for f, _ in added] == list(book.SCRIPTS)
    assert [p for _, p in added] == sorted(p for _, p in added)  # vega before vega-embed
    for script in book.SCRIPTS:
        assert (ROOT / book.STATIC / script).is_file()


def test_config_loads_the_extension_and_the_js_ships_with_its_licence():
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "attnbook.interactive.book" in config["sphinx"]["extra_extensions"]
    licence = (ROOT / "book/_static/vega/LICENSE").read_text()
    assert licence.startswith("Copyright (c) 2015, University of Washington")


def test_a_page_gains_about_one_megabyte_at_most():
    scripts = sum((ROOT / book.STATIC / s).stat().st_size for s in book.SCRIPTS)
    for name, figure in FIGURES.items():
        png = base64.b64encode(figure.png()).decode()
        html = book.figure_html(figure.spec, figure.alt, "data:image/png;base64," + png)
        assert scripts + len(html.encode()) < 1_000_000, (name, scripts, len(html))

"""One interactive figure: a Vega-Lite spec, its controls, alt text and a PNG fallback.

The same object renders wherever the reader is (``_repr_mimebundle_``):

- JupyterLab (``make lab``), Notebook 7, VS Code: the Vega-Lite mimetype, drawn by the
  front end's own Vega (JupyterLab ships it), offline;
- the HTML book: MyST-NB hands the same mimetype to ``attnbook.interactive.book``, which
  writes the PNG and the spec into the page; the page's vendored Vega draws it;
- Colab: Altair's own HTML renderer (Colab has no Vega of its own; it is online);
- print, LaTeX, readers without JavaScript: the PNG (matplotlib), which is also in the
  bundle for any front end that draws neither.

A builder (``attnbook.interactive.foundations`` and the others) computes the figure's
data with the package's own functions and says, through ``expected``, which values each
named mark must show for a setting of the controls; the tests compare both.
"""

from __future__ import annotations

import base64
import io
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import altair as alt
import matplotlib.pyplot as plt

VEGALITE_MIME = "application/vnd.vegalite.v5+json"
WIDTH = 250  # px of one panel: two panels and their controls fit the book's text column
EMBED_OPTIONS = {"actions": False, "renderer": "svg"}


@dataclass(frozen=True)
class Control:
    """A control the reader moves: a Vega-Lite parameter bound to an input element.

    ``kind``: "range" (a slider over ``values``, evenly spaced), "select" (a drop-down
    whose options are ``values``, shown as ``labels``) or "checkbox" (False/True).
    """

    name: str
    label: str
    kind: str
    values: tuple
    value: object
    labels: tuple | None = None

    @property
    def step(self) -> float:
        return (self.values[-1] - self.values[0]) / (len(self.values) - 1)

    def param(self) -> alt.Parameter:
        if self.kind == "range":
            bind = alt.binding_range(min=self.values[0], max=self.values[-1],
                                     step=self.step, name=self.label + " ")
        elif self.kind == "select":
            bind = alt.binding_select(options=list(self.values), name=self.label + " ",
                                      labels=list(self.labels or map(str, self.values)))
        else:
            bind = alt.binding_checkbox(name=self.label + " ")
        return alt.param(name=self.name, value=self.value, bind=bind)

    def matches(self, field_name: str) -> str:
        """A Vega expression, true for the rows computed at this control's setting."""
        if self.kind == "range":  # a slider's value can carry rounding: match within a step
            return f"abs(datum.{field_name} - {self.name}) < {self.step / 2}"
        return f"datum.{field_name} == {self.name}"


def slider(name: str, label: str, values: Sequence[float], value: float) -> Control:
    return Control(name, label, "range", tuple(values), value)


def select(name: str, label: str, values: Sequence, value, labels=None) -> Control:
    return Control(name, label, "select", tuple(values), value,
                   None if labels is None else tuple(labels))


def checkbox(name: str, label: str, value: bool = False) -> Control:
    return Control(name, label, "checkbox", (False, True), value)


def grid(*axes: Sequence) -> list[tuple]:
    """Every combination of the settings on ``axes`` (the first varies slowest)."""
    combos: list[tuple] = [()]
    for axis in axes:
        combos = [c + (v,) for c in combos for v in axis]
    return combos


def rounded(x: float, digits: int = 4) -> float:
    """A value stored in a spec: 4 decimals (what the figure shows) keep the page light."""
    return round(float(x), digits) + 0.0  # + 0.0: no "-0.0" in the page


@dataclass
class InteractiveFigure:
    """A figure to play with. ``chart``: the Altair chart (its params bound to ``controls``);
    ``alt``: what the figure shows and what to try, for screen readers and as the PNG's
    alt text; ``draw_png(settings)``: a matplotlib figure at the controls' ``settings``
    (the static fallback); ``expected(settings)``: for each named mark, the rows it must
    show, computed by the package (the tests compare them with the live figure)."""

    chart: alt.TopLevelMixin
    alt: str
    controls: list[Control]
    draw_png: Callable[[dict], plt.Figure]
    expected: Callable[[dict], dict[str, list[dict]]]
    title: str = ""
    _spec: dict | None = field(default=None, repr=False)

    @property
    def defaults(self) -> dict:
        return {c.name: c.value for c in self.controls}

    @property
    def spec(self) -> dict:
        """The Vega-Lite spec (validated by Altair), with the alt text as its description."""
        if self._spec is None:
            spec = self.chart.properties(description=self.alt).to_dict()
            spec.setdefault("config", {}).update(
                {"view": {"stroke": None}, "font": "sans-serif"})
            self._spec = spec
        return self._spec

    def png(self) -> bytes:
        """The fallback: the figure at the controls' defaults, drawn by matplotlib."""
        fig = self.draw_png(self.defaults)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        plt.close(fig)
        return buffer.getvalue()

    def _repr_mimebundle_(self, include=None, exclude=None):
        if "google.colab" in sys.modules:  # Colab draws HTML only, and is online
            return {"text/html": alt.Chart.from_dict(self.spec)._repr_mimebundle_()[
                "text/html"], "text/plain": self.alt}
        png = base64.b64encode(self.png()).decode("ascii")
        data = {VEGALITE_MIME: self.spec, "image/png": png, "text/plain": self.alt}
        metadata = {VEGALITE_MIME: {"embed_options": EMBED_OPTIONS,
                                    "attnbook": {"png": png, "alt": self.alt}},
                    "image/png": {"alt": self.alt}}
        return data, metadata


def same_number(a: float, b: float, tol: float = 1e-5) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)

"""The look the report's charts share: colours, number and label formatting, and a figure of each drawing kind."""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import plotly.graph_objects as go
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["BLACK", "BLUE", "GREEN", "GREY", "ORANGE", "PURPLE", "RED", "fallback_fonts", "fmt", "short",
           "static_figure", "styled"]

BLUE, ORANGE, RED, GREY = "#1f77b4", "#ff7f0e", "#d62728", "#9a9a9a"
GREEN, PURPLE, BLACK = "#2ca02c", "#9467bd", "#222222"


def fmt(value: Any) -> str:
    """A number as a table or hover shows it: 4 significant digits, a float of 1,000 or more as a whole number with
    its thousands separated (never 1.865e+04), n/a for NaN."""
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:,.0f}" if 1000 <= abs(value) < 1e15 else f"{value:.4g}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    return str(value)


def short(text: str, width: int = 14) -> str:
    """`text` cut to `width` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def static_figure(width: float, height: float) -> Figure:
    """A matplotlib figure on its own Agg canvas (no display, no global backend), for a PNG."""
    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def fallback_fonts(characters: Iterable[str]) -> list[str]:
    """The families of installed fonts that draw `characters` Matplotlib's own font lacks (Noto Sans CJK for a
    Chinese class name), one per character at most, in Matplotlib's font list's order; to follow the default family
    in `font.family`, which Matplotlib then falls back through glyph by glyph. Matplotlib's Last Resort font, which
    draws every character as a box, is none of them."""
    from matplotlib import font_manager

    families: list[str] = []
    for character in characters:
        found = next((font.name for font in font_manager.fontManager.ttflist
                      if "Last Resort" not in font.name and ord(character) in _charmap(font.fname)), None)
        if found and found not in families:
            families.append(found)
    return families


@functools.cache
def _charmap(path: str) -> frozenset[int]:
    """The code points the font file at `path` draws (none when FreeType cannot read it)."""
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


TITLE_TOP = 32  # pixels from a chart's top to its title: below the mode bar's buttons


def styled(figure: go.Figure, title: str | None, height: int) -> go.Figure:
    """The look every chart of the page shares; `title` None for a chart whose subplots have titles. The title
    stands below the row of the chart's buttons (plotly's mode bar, at its top right), which covered it in a
    narrow window."""
    figure.update_layout(title={"text": title, "x": 0.02, "y": 1 - TITLE_TOP / height, "yanchor": "top",
                                "yref": "container"}, height=height,
                         template="plotly_white", margin={"l": 60, "r": 30, "t": 80, "b": 50},
                         legend={"orientation": "h", "x": 0, "y": -0.15, "yanchor": "top"})
    return figure

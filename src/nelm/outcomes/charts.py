"""Outcome charts (matplotlib, no pyplot: safe in a server thread).

One chart per cohort: its arms on one axis of one endpoint, each arm with its own
line style, marker and colour (legible in grey-scale), the points the source reports
marked, the stretch beyond the last reported point faded, the treatment hazard ratio
when the source gives one, and the caption that these are reconstructions. Numbers
at risk are never drawn: the sources do not report them. Charts are drawn from the
``outcomes`` entries of an assessment alone, so a stored assessment can be charted.
"""
from __future__ import annotations

import io
import re
import textwrap
import threading
from typing import Any, Iterable

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

CAPTION = "Reconstructed from reported medians/rates — not patient-level data"
STYLES = [  # (colour, line style, marker, filled marker)
    ("#000000", "-", "o", True),
    ("#0072B2", (0, (6, 2.5)), "s", False),
    ("#D55E00", (0, (5, 2, 1.2, 2)), "^", True),
    ("#009E73", (0, (1.2, 1.6)), "D", False),
    ("#7A5195", (0, (9, 3, 2, 3)), "v", True),
]
Y_LABELS = {"os": "Overall survival", "pfs": "Progression-free survival",
            "ttp": "Free of progression (time to progression)"}
# rc_context changes matplotlib's global settings: one chart at a time (the web app
# renders reports in a thread pool).
_LOCK = threading.Lock()
_RC = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10.5, "svg.fonttype": "none",
       "axes.spines.top": False, "axes.spines.right": False}


def group_by_cohort(outcomes: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Arms of the same cohort together, in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for o in outcomes:
        groups.setdefault(o["cohort"], []).append(o)
    return list(groups.values())


def fmt_ratio(x: float | None) -> str:
    """A ratio as printed: 2.0 stays 2.0 (not 2), 0.34 stays 0.34."""
    if x is None:
        return "?"
    return f"{x:.1f}" if float(x).is_integer() else f"{x:g}"


def hazard_ratio_text(hr: dict[str, Any] | None) -> str | None:
    if not hr or hr.get("value") is None:
        return None
    text = f"HR {fmt_ratio(hr['value'])}"
    if hr.get("ci_low") is not None and hr.get("ci_high") is not None:
        text += f" (95 % CI {fmt_ratio(hr['ci_low'])}–{fmt_ratio(hr['ci_high'])})"
    if hr.get("p_value"):
        p = str(hr["p_value"])
        text += f", p {p}" if p[:1] in "<>=" else f", p = {p}"
    return text


def median_text(arm: dict[str, Any]) -> str:
    if arm.get("median_months") is not None:
        return f"median {arm['median_months']:g} mo"
    if arm.get("median_not_reached"):
        return "median not reached"
    return "median not reported"


def single_median(arm: dict[str, Any]) -> bool:
    """True when the curve rests on one reported median alone (its shape is assumed)."""
    reported = arm.get("reported") or []
    return len(reported) == 1 and reported[0].get("kind") == "median"


def _draw(arms: list[dict[str, Any]], *, width: float, height: float) -> Figure:
    first = arms[0]
    fig = Figure(figsize=(width, height))
    title = textwrap.fill(first.get("title") or first["cohort"], max(30, int(width * 10.5)))
    sub = textwrap.fill(f"Source: {first.get('source_label') or first['source']}",  # ids stay in the JSON
                        max(40, int(width * 13.5)))
    foot = textwrap.fill(f"{CAPTION}. Markers: points the source reports; faded: beyond the last reported "
                         "point (assumed shape). Numbers at risk are not reported by the sources.",
                         max(60, int(width * 17.5)))
    # layout in inches: title block on top, x label and caption below the axes
    line = 1 / 72 * 1.25
    top_in = 0.12 + (title.count("\n") + 1) * 10.5 * line + (sub.count("\n") + 1) * 8.5 * line + 0.14
    bottom_in = 0.10 + (foot.count("\n") + 1) * 7.2 * line + 0.55
    left_in, right_in = 0.72, 0.12
    ax = fig.add_axes((left_in / width, bottom_in / height,
                       1 - (left_in + right_in) / width, 1 - (top_in + bottom_in) / height))
    t_max = max(a["curve"][-1][0] for a in arms)
    handles = []
    for i, arm in enumerate(arms):
        colour, ls, marker, filled = STYLES[i % len(STYLES)]
        xs = [p[0] for p in arm["curve"]]
        ys = [p[1] for p in arm["curve"]]
        # solid where the reported points pin the curve; faded where its shape is assumed:
        # beyond the last reported point, and the fall into a reported 0 % (shape unknown)
        positive = [p["months"] for p in arm["reported"] if p["value"] > 0]
        solid_end = max(positive) if positive else 0.0
        cut = next((j for j, x in enumerate(xs) if x >= solid_end - 1e-9), len(xs) - 1)
        if cut > 0:
            ax.plot(xs[:cut + 1], ys[:cut + 1], color=colour, linestyle=ls, linewidth=1.8, zorder=3)
        if cut < len(xs) - 1:
            ax.plot(xs[cut:], ys[cut:], color=colour, linestyle=ls, linewidth=1.4, alpha=0.4, zorder=2)
        rx = [p["months"] for p in arm["reported"]]
        ry = [p["value"] for p in arm["reported"]]
        ax.plot(rx, ry, linestyle="none", marker=marker, markersize=6.5, markeredgewidth=1.3,
                markeredgecolor=colour, markerfacecolor=colour if filled else "white", zorder=4)
        label = f"{arm.get('label') or arm['arm']} ({median_text(arm)})"
        if single_median(arm):
            label += " — from a single median"
        handles.append(Line2D([], [], color=colour, linestyle=ls, linewidth=1.8, marker=marker, markersize=6,
                              markeredgecolor=colour, markerfacecolor=colour if filled else "white",
                              label=label))
    ax.axhline(0.5, color="#888888", linewidth=0.7, linestyle=(0, (1, 2)), zorder=1)
    ax.set_xlim(0, t_max * 1.03)
    ax.set_ylim(0, 1.03)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:.0f} %"))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 3, 5, 6, 10], integer=True))
    ax.set_xlabel(f"Months from {first.get('start') or 'start'}")
    ax.set_ylabel(Y_LABELS.get(first.get("endpoint_code", ""), first["endpoint"].capitalize()))
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    y = 1 - 0.12 / height
    fig.text(0.1 / width, y, title, ha="left", va="top", fontsize=10.5, fontweight="bold")
    y -= (title.count("\n") + 1) * 10.5 * line / height
    fig.text(0.1 / width, y, sub, ha="left", va="top", fontsize=8.5, color="#333333")
    hr = hazard_ratio_text(first.get("hazard_ratio"))
    if hr:
        ax.text(0.99, 0.98, hr, transform=ax.transAxes, ha="right", va="top", fontsize=8,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#999999", "linewidth": 0.6})
    if any(single_median(a) for a in arms):
        # said inside the chart, so a copied picture cannot lose it
        ax.text(0.99, 0.62, "Drawn from a single reported median:\nonly that point is published,\nthe curve's shape is assumed",
                transform=ax.transAxes, ha="right", va="top", fontsize=7.5, color="#7a4a00",
                bbox={"boxstyle": "round,pad=0.3", "facecolor": "#fff8e6", "edgecolor": "#c99a00", "linewidth": 0.6})
    ax.legend(handles=handles, loc="lower left", fontsize=8, frameon=True, framealpha=0.92,
              edgecolor="#bbbbbb", handlelength=3.2)
    fig.text(0.1 / width, 0.08 / height, foot, ha="left", va="bottom", fontsize=7.2, style="italic", color="#333333")
    return fig


def render(arms: list[dict[str, Any]], fmt: str = "svg", *, width: float = 6.6, height: float = 4.2,
           dpi: int = 150) -> bytes:
    """One cohort's chart as SVG, PNG or PDF bytes."""
    if not arms:
        raise ValueError("no arms to draw")
    if len({a["endpoint"] for a in arms}) != 1:
        raise ValueError("one chart, one endpoint: these arms mix " + ", ".join(sorted({a["endpoint"] for a in arms})))
    rc = dict(_RC, **{"svg.hashsalt": arms[0]["cohort"]})
    with _LOCK, rc_context(rc):
        fig = _draw(arms, width=width, height=height)
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()


def inline_svg(arms: list[dict[str, Any]], *, title: str | None = None) -> str:
    """The chart as an ``<svg>`` element to paste into an HTML page (scales to its box)."""
    svg = render(arms, "svg").decode("utf-8")
    svg = svg[svg.index("<svg"):]
    head_end = svg.index(">")
    head = svg[:head_end]
    head = re.sub(r'\swidth="[^"]*"', ' width="100%"', head, count=1)
    head = re.sub(r'\sheight="[^"]*"', "", head, count=1)
    label = title or arms[0].get("title") or arms[0]["cohort"]
    head += f' role="img" aria-label="{_attr(label)}"'
    return head + svg[head_end:]


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")

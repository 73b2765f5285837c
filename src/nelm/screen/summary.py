"""The screening summary: how many patients got each criterion status, each verdict and
each leading option, as a table and a chart (matplotlib, imported only when drawn)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

VERDICT_ORDER = ("preferred", "reasonable", "not_recommended", "contraindicated", "undetermined")
STATUS_ORDER = ("met", "not_met", "unknown")
# Colour-blind safe and distinct in grey scale: each panel's colours are ordered by luminance
# (dark to light, as the categories run from favourable to unknown; blue and orange, never red
# against green), and each category also has its own hatching, so a black-and-white print or a
# viewer without colour vision still tells every bar segment apart
# (tests/cohort/test_summary_chart.py checks the luminance steps).
STYLE: dict[str, dict[str, dict[str, str]]] = {
    "verdicts": {
        "preferred": {"color": "#08306b", "hatch": ""},
        "reasonable": {"color": "#2c7fb8", "hatch": "//"},
        "not_recommended": {"color": "#e6a23c", "hatch": "\\\\"},
        "contraindicated": {"color": "#fdd9a5", "hatch": "xx"},
        "undetermined": {"color": "#ffffff", "hatch": ".."},
    },
    "criteria": {
        "met": {"color": "#08306b", "hatch": ""},
        "not_met": {"color": "#e6a23c", "hatch": "xx"},
        "unknown": {"color": "#ffffff", "hatch": ".."},
    },
}


def luminance(colour: str) -> float:
    """Relative luminance (WCAG 2) of a ``#rrggbb`` colour: what a grey-scale print keeps."""
    rgb = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


class Summary:
    def __init__(self) -> None:
        self.counts: dict[str, Counter] = {}

    def add(self, frame: pl.DataFrame) -> None:
        for col in frame.columns:
            if col.startswith(("criteria.", "options.", "plan.", "classification.")):
                vc = frame[col].fill_null("none" if col == "plan.leading" else "unknown").value_counts()
                self.counts.setdefault(col, Counter()).update(dict(vc.iter_rows()))

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {c: dict(n) for c, n in self.counts.items()}

    def print(self, console: Any, result: Any) -> None:
        from rich.table import Table

        console.print(f"{result.assessed} of {result.rows} rows assessed"
                      + (f"; {result.assumed} plan(s) rest on assumed facts" if result.assumed else ""), markup=False)
        for title, prefix, order in (("Criteria", "criteria.", STATUS_ORDER), ("Verdicts", "options.", VERDICT_ORDER)):
            cols = [c for c in self.counts if c.startswith(prefix)]
            if not cols:
                continue
            table = Table(title=title)
            table.add_column(prefix.rstrip("."))
            for k in order:
                table.add_column(k, justify="right")
            for c in cols:
                table.add_row(c.removeprefix(prefix).removesuffix(".verdict"), *[str(self.counts[c].get(k, 0)) for k in order])
            console.print(table)
        if "plan.leading" in self.counts:
            top = ", ".join(f"{k} {v}" for k, v in self.counts["plan.leading"].most_common(8))
            console.print(f"plan.leading: {top}", markup=False)

    def chart(self, path: str | Path, title: str | None = None) -> None:
        """Two panels of stacked bars, criteria (status) and options (verdict), each bar the
        share of assessed patients; human labels, a title with n, a legend per panel."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .. import labels
        from ..knowledge import load
        from ..knowledge.ruleset import OPTION_LABELS

        kb = load()
        criteria_labels = {f"criteria.{cs.id}": cs.label for cs in kb.criteria}
        panels = []
        crit = [c for c in self.counts if c.startswith("criteria.")]
        opts = [c for c in self.counts if c.startswith("options.")]
        if crit:
            panels.append(("Eligibility criteria", "criteria", STATUS_ORDER, labels.status_label, crit,
                           [_short(criteria_labels.get(c, c.removeprefix("criteria."))) for c in crit]))
        if opts:
            ids = [c.removeprefix("options.").removesuffix(".verdict") for c in opts]
            panels.append(("Treatment options: verdict", "verdicts", VERDICT_ORDER, labels.verdict_label, opts,
                           [_short(OPTION_LABELS.get(i, i.replace("_", " "))) for i in ids]))
        if not panels:
            return
        n = max(sum(self.counts[c].values()) for c in crit + opts)
        heights = [max(len(p[4]), 1) * 0.34 + 1.1 for p in panels]
        fig, axes = plt.subplots(len(panels), 1, figsize=(9.5, sum(heights) + 0.9),
                                 gridspec_kw={"height_ratios": heights}, squeeze=False)
        plt.rcParams["hatch.linewidth"] = 0.6
        for ax, (name, kind, order, word, cols, ylabels) in zip(axes[:, 0], panels):
            style = STYLE[kind]
            for y, c in enumerate(cols):
                total = sum(self.counts[c].values()) or 1
                left = 0.0
                for k in order:
                    share = self.counts[c].get(k, 0) / total
                    ax.barh(y, share, left=left, color=style[k]["color"], hatch=style[k]["hatch"],
                            edgecolor="#333333", linewidth=0.5, label=word(k) if y == 0 else None)
                    left += share
            ax.set_yticks(range(len(cols)), ylabels)
            ax.invert_yaxis()
            ax.set_xlim(0, 1)
            ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
            ax.set_title(name, loc="left", fontsize="medium")
            ax.legend(loc="lower left", bbox_to_anchor=(1.01, 0.0), fontsize="small", frameon=False)
        axes[-1, 0].set_xlabel("share of assessed patients")
        fig.suptitle(title or f"Screening summary (n = {n:,} patients assessed)", x=0.02, ha="left")
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


def _short(text: str, width: int = 50) -> str:
    text = text[0].upper() + text[1:] if text else text
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"

"""The screening summary: how many patients got each criterion status, each verdict and
each leading option, as a table and a chart (matplotlib, imported only when drawn)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

VERDICT_ORDER = ("preferred", "reasonable", "not_recommended", "contraindicated", "undetermined")
STATUS_ORDER = ("met", "not_met", "unknown")
COLOURS = {"preferred": "#1a7f37", "reasonable": "#7fbf7b", "not_recommended": "#f4a582",
           "contraindicated": "#b2182b", "undetermined": "#bdbdbd",
           "met": "#1a7f37", "not_met": "#b2182b", "unknown": "#bdbdbd"}


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

    def chart(self, path: str | Path) -> None:
        """Stacked bars: one per criterion set and per option (share of patients)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [(c, STATUS_ORDER) for c in self.counts if c.startswith("criteria.")] + \
               [(c, VERDICT_ORDER) for c in self.counts if c.startswith("options.")]
        if not rows:
            return
        fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.4))
        labels = [c.removeprefix("options.").removesuffix(".verdict") for c, _ in rows]
        seen: set[str] = set()
        for y, (c, order) in enumerate(rows):
            total = sum(self.counts[c].values()) or 1
            left = 0.0
            for k in order:
                share = self.counts[c].get(k, 0) / total
                ax.barh(y, share, left=left, color=COLOURS[k], label=k if k not in seen else None)
                seen.add(k)
                left += share
        ax.set_yticks(range(len(rows)), labels)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of assessed patients")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, fontsize="small", frameon=False)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)

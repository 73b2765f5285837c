"""Figures of the cohort report (matplotlib, Agg): Kaplan–Meier curves with their 95 %
bands and the numbers at risk under the plot (``lifelines.plotting.add_at_risk_counts``),
and the published reconstructed curves beside them.

Grey-scale safe: every curve has its own line style (and the published ones markers), so a
black-and-white print tells them apart; the colours are the Okabe–Ito palette
(colour-blind safe). Published curves are dashed or dotted, grey-toned, and labelled
"reconstructed". Figures are returned as SVG text.
"""
from __future__ import annotations

import io
from typing import Any

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
CENTRE_STYLES = ("-", (0, (6, 2)), (0, (1, 1.5)), (0, (6, 2, 1, 2)), (0, (3, 1, 1, 1, 1, 1)), (0, (10, 3)))
PUBLISHED_STYLES = ((0, (4, 2)), (0, (1, 2)), (0, (4, 2, 1, 2)), (0, (8, 2, 2, 2)))
PUBLISHED_MARKERS = ("o", "s", "^", "D", "v", "P")


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def km_figure(fitters: list[Any], title: str, endpoint_label: str, published: list[dict[str, Any]] | None = None,
              max_months: float | None = None) -> str:
    """Kaplan–Meier curves (one per fitter, labelled by its group), optional published arms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lifelines.plotting import add_at_risk_counts

    fig, ax = plt.subplots(figsize=(8.0, 5.2 + 0.25 * len(fitters)))
    for i, kmf in enumerate(fitters):
        kmf.plot_survival_function(ax=ax, ci_show=True, ci_alpha=0.15, color=OKABE_ITO[i % len(OKABE_ITO)],
                                   linestyle=CENTRE_STYLES[i % len(CENTRE_STYLES)], linewidth=2.0,
                                   show_censors=len(kmf.durations) <= 300)
    j = 0
    for cohort in published or []:
        for arm in cohort["arms"]:
            xs = [p[0] for p in arm["curve"]]
            ys = [p[1] for p in arm["curve"]]
            grey = ("#4d4d4d", "#7f7f7f", "#262626", "#999999")[j % 4]
            ax.plot(xs, ys, color=grey, linestyle=PUBLISHED_STYLES[j % len(PUBLISHED_STYLES)], linewidth=1.4,
                    marker=PUBLISHED_MARKERS[j % len(PUBLISHED_MARKERS)], markevery=max(1, len(xs) // 8),
                    markersize=4, markerfacecolor="white",
                    label=_published_label(cohort, arm))
            j += 1
    ax.set_ylim(0, 1.02)
    if max_months:
        ax.set_xlim(0, max_months)
    ax.set_xlabel("months from treatment")
    ax.set_ylabel(endpoint_label)
    ax.set_title(title, loc="left", fontsize="medium")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="x-small", frameon=True)
    if fitters:
        add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk"], fig=fig)
    fig.tight_layout()
    return _svg(fig)


def _published_label(cohort: dict[str, Any], arm: dict[str, Any]) -> str:
    """'Surgery — Surgery vs IAT, >25 % hepatic burden, symptomatic (Mayo et al. 2011; published, reconstructed)'."""
    who = (cohort.get("source_label") or "").split(",")[0]
    title = cohort.get("title")
    return f"{arm['label']} — {title} ({who}; published, reconstructed)" if title else \
        f"{arm['label']} ({who}; published, reconstructed)"

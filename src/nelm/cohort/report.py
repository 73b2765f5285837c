"""The cohort report as people read it: HTML (figures embedded as SVG data), plain text.

The HTML is one self-contained file (no script, no external asset): the recipe, the
versions of nelm, the knowledge base and the libraries, the STROBE-style flow, every
refused row with its field, the warnings, Table 1, the Kaplan–Meier table and figure, the
Cox table, the propensity-matched comparison with its balance table, and the published
curves beside the centre's. Jinja2 escapes every value (autoescape); the figures enter as
base64 ``data:`` URIs, so no text of the registry can become markup.
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..engine import DISCLAIMER
from .analysis import CohortResult

HERE = Path(__file__).parent


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _p(value: Any) -> str:
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"], default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=_num, pct=_pct, p=_p)
    return env


def figure_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def render_html(result: CohortResult) -> str:
    figures = {k: figure_uri(v) for k, v in result.figures.items()}
    return _env().get_template("report.html").render(r=result.report, figures=figures, disclaimer=DISCLAIMER)


def render_text(result: CohortResult) -> str:
    r = result.report
    out = [r["title"], "=" * len(r["title"]), ""]
    f = r["flow"]
    out.append(f"Rows read {f['rows_read']}; refused {f['rows_invalid']}; "
               + "".join(f"excluded {e['n']} ({e['reason']}); " for e in f["excluded"]) + f"analysed {f['analysed']}.")
    for p in r["problems"][:20]:
        out.append(f"  row {p['row']}: {p['field'] or '(document)'}: {p['message']}")
    if len(r["problems"]) > 20:
        out.append(f"  ... {len(r['problems']) - 20} more problem(s) in the report")
    for w in r["warnings"]:
        out.append(f"warning: {w['message']}")
    km = r.get("kaplan_meier")
    if km:
        out += ["", f"Kaplan–Meier, {r['endpoint']['label']} (months):"]
        for g in km["groups"]:
            ci = g["median_ci"]
            rates = ", ".join(f"{x['years']} y {_pct(x['survival'])}" for x in g["rates"] if x["survival"] is not None)
            out.append(f"  {g['group']}: n {g['n']}, events {g['events']}, median {_num(g['median_months'])} "
                       f"(95 % CI {_num(ci[0])}–{_num(ci[1])}); {rates}")
        if km["logrank"]:
            out.append(f"  log-rank chi2 {_num(km['logrank']['chi2'], 2)}, df {km['logrank']['df']}, p {_p(km['logrank']['p'])}")
    cox = r.get("cox")
    if cox and cox["terms"]:
        out += ["", f"Cox proportional hazards (n {cox['n']}, events {cox['events']}):"]
        for t in cox["terms"]:
            out.append(f"  {t['label']}: HR {_num(t['hr'], 2)} (95 % CI {_num(t['ci_low'], 2)}–{_num(t['ci_high'], 2)}), p {_p(t['p'])}")
    ps = r.get("propensity")
    if ps and ps.get("matched"):
        m = ps["matched"]
        out += ["", f"Propensity-matched ({ps['pairs']} pairs, caliper {ps['caliper_sd']:g} SD of the logit = {ps['caliper']:.3f}):"]
        for t in m["cox"]["terms"]:
            out.append(f"  {t['label']}: HR {_num(t['hr'], 2)} (95 % CI {_num(t['ci_low'], 2)}–{_num(t['ci_high'], 2)}), "
                       f"p {_p(t['p'])} (robust SE clustered on pairs)")
        for g in m["kaplan_meier"]:
            out.append(f"  {g['group']}: median {_num(g['median_months'])} months")
        worst = max((abs(b["smd_after"]) for b in ps["balance"] if b["smd_after"] is not None), default=None)
        out.append(f"  largest |SMD| after matching: {_num(worst, 3)}")
    return "\n".join(out) + "\n"

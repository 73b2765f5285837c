"""``nelm cohort``: the whole analysis of a registry, as one JSON-ready report.

Order of work, reported as a STROBE-style flow: rows read → rows refused (named by row and
field, as ``nelm screen`` names them) → rows excluded with their reason (endpoint not
recorded; group unknown; for a design, a treatment outside the comparison) → rows
analysed. Then: Table 1 by group with SMDs, Kaplan–Meier per group with the log-rank test,
Cox regression on the group and the covariates (complete cases, the count left out said),
with a design the propensity-matched comparison, and the published curves that apply to
each group's patients. Figures are SVG text, kept apart from the JSON.
"""
from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .. import __version__
from ..knowledge import load
from ..outcomes.curves import ENDPOINTS
from . import covariates as cov
from .cox import fit_cox
from .designs import DESIGNS, Design
from .literature import beside, match_exprs
from .propensity import CALIPER_SD, balance, greedy_match, propensity_scores
from .registry import read_registry, value_label, variable_label
from .survival import MIN_EVENTS, kaplan_meier, logrank
from .table1 import DEFAULT, table1

ENDPOINT_COLUMNS = {"os": ("time_months", "event"), "pfs": ("progression_months", "progression_event")}
LIBRARIES = ("lifelines", "statsmodels", "polars", "numpy", "pandas", "scipy", "matplotlib")
SCHEMA_VERSION = 1


@dataclass
class CohortResult:
    report: dict[str, Any]
    figures: dict[str, str] = field(default_factory=dict)   # name -> SVG

    @property
    def exit_code(self) -> int:
        return 2 if self.report["problems"] else 0


def versions(kb: Any) -> dict[str, Any]:
    libs = {}
    for name in LIBRARIES:
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libs[name] = None
    return {"nelm": __version__, "knowledge_base": {"version": kb.version, "sha256": kb.sha256},
            "python": platform.python_version(), "libraries": libs}


def _rows(mask: np.ndarray, rows: np.ndarray, limit: int = 50) -> list[int]:
    return [int(r) for r in rows[mask][:limit]]


def analyse(source: str | Path, *, design: str | None = None, group: str | None = None,
            covariates: str | None = None, endpoint: str | None = None, seed: int = 0,
            caliper_sd: float = CALIPER_SD, figures: bool = True, source_name: str | None = None) -> CohortResult:
    kb = load()
    d: Design | None = None
    if design is not None:
        if design not in DESIGNS:
            raise ValueError(f"--design {design!r} is not a known design; allowed: {', '.join(DESIGNS)}")
        d = DESIGNS[design]
        if group is not None:
            raise ValueError(f"--group cannot be combined with --design: the design {design} compares "
                             f"{d.treated_label.lower()} with {d.control_label.lower()}")
    endpoint = endpoint or (d.endpoint if d else "os")
    if endpoint not in ENDPOINT_COLUMNS:
        raise ValueError(f"--endpoint {endpoint!r}: allowed: os, pfs")
    if not 0 < caliper_sd <= 5:
        raise ValueError("--caliper must be between 0 and 5 standard deviations of the logit of the score")
    wants_plan = any(name.startswith("plan.") for name in [group or "", *(c.name for c in cov.parse(covariates))])
    reg = read_registry(source, kb, extra=match_exprs(kb), plan=wants_plan)
    frame = reg.frame
    has = reg.outcome_columns
    needed = {"os": [("time_months", "start_date and last_date"), ("event", None)],
              "pfs": [("progression_months", None), ("progression_event", None)]}[endpoint]
    absent = [name + (f" (or {alt})" if alt else "") for name, alt in needed
              if name not in has and not (alt and {"start_date", "last_date"} <= has)]
    if absent and reg.rows_read:
        raise ValueError(f"{Path(source).name}: no column {', '.join(absent)}: the {ENDPOINTS[endpoint]['label']} "
                         "cannot be analysed (see nelm cohort --help for the registry's columns)")
    group_col = group or "treatment"
    if frame.height and group_col not in cov.allowed(frame) + ["treatment"]:
        raise ValueError(f"--group {group_col!r} is not a column of the registry or a derived variable; "
                         f"allowed: {', '.join(sorted(cov.allowed(frame)))}")
    covs = cov.parse(covariates)
    if d is not None and not covs:
        # a design's unmatched Cox model is adjusted for the propensity model's covariates
        # (regression adjustment beside the matched comparison) unless others are given
        covs = [cov.Covariate(*_split(p)) for p in d.propensity]
    if frame.height:
        cov.check(covs, frame)
    warnings: list[dict[str, str]] = []
    time_col, event_col = ENDPOINT_COLUMNS[endpoint]
    rows = frame["__row"].to_numpy() if frame.height else np.array([], dtype=int)
    keep = np.ones(frame.height, dtype=bool)
    excluded: list[dict[str, Any]] = []

    def exclude(mask: np.ndarray, reason: str) -> None:
        nonlocal keep
        hit = keep & mask
        if hit.any():
            excluded.append({"reason": reason, "n": int(hit.sum()), "rows": _rows(hit, rows)})
        keep &= ~mask

    if frame.height:
        if frame[time_col].null_count() == frame.height:
            warnings.append({"kind": "endpoint", "message": f"no row records {time_col}: no survival analysis is possible"})
        exclude((frame[time_col].is_null() | frame[event_col].is_null()).to_numpy(),
                f"{ENDPOINTS[endpoint]['label']} not recorded ({time_col} or {event_col} empty)")
    if d is not None and frame.height:
        t = frame["treatment"]
        exclude(t.is_null().to_numpy(), "treatment unknown")
        arm = np.where(t.is_in(list(d.treated)).to_numpy(), d.treated_label,
                       np.where(t.is_in(list(d.control)).to_numpy(), d.control_label, None))
        exclude(arm == None, f"treatment neither {d.treated_label.lower()} ({', '.join(d.treated)}) nor "  # noqa: E711
                             f"{d.control_label.lower()} ({', '.join(d.control)})")
        group_values = pl.Series("group", arm.tolist(), dtype=pl.String)
        group_col = "treatment"
        group_title = "Treatment (design arms)"
    elif frame.height:
        s = frame[group_col]
        exclude(s.is_null().to_numpy(), f"{variable_label(group_col)} unknown")
        group_values = pl.Series("group", [None if v is None else value_label(group_col, v) for v in s.to_list()],
                                 dtype=pl.String)
        group_title = variable_label(group_col)
    else:
        group_values = pl.Series("group", [], dtype=pl.String)
        group_title = variable_label(group_col)

    data = frame.filter(pl.Series(keep)) if frame.height else frame
    groups = group_values.filter(pl.Series(keep)) if frame.height else group_values
    report: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "title": d.title if d else f"{ENDPOINTS[endpoint]['label'].capitalize()} by {_lower_first(group_title)}",
        "versions": versions(kb),
        "recipe": _recipe(source_name or Path(source).name, d, group_col if d is None else None, covs, endpoint,
                          seed, caliper_sd),
        "flow": {"rows_read": reg.rows_read, "rows_invalid": len(reg.invalid_rows),
                 "rows_valid": frame.height, "excluded": excluded, "analysed": int(data.height)},
        "problems": [{"row": p.row, "field": p.field, "message": p.message} for p in reg.problems],
        "warnings": warnings,
        "endpoint": {"id": endpoint, "label": ENDPOINTS[endpoint]["label"], "time": time_col, "event": event_col},
        "group": {"column": group_col, "label": group_title},
    }
    if reg.problems:
        warnings.append({"kind": "invalid_rows", "message": f"{len(reg.invalid_rows)} row(s) refused and left out; "
                                                            "each is listed with its field under problems"})
    result = CohortResult(report)
    if not data.height:
        warnings.append({"kind": "empty", "message": "no row is left to analyse"})
        return result

    durations = data[time_col].cast(pl.Float64).to_numpy()
    events = data[event_col].cast(pl.Float64).to_numpy().astype(int)
    g = groups.to_numpy()
    labels_sorted = sorted({str(x) for x in g}, key=str)
    if d is not None:   # the design's arms in its own order (treated first), as in the matched figure
        labels_sorted = [lb for lb in (d.treated_label, d.control_label) if lb in labels_sorted]

    # ---------------------------------------------------------------- Table 1
    t1_covs = [cov.Covariate(n) for n in DEFAULT if n in data.columns]
    extra = [c for c in covs + ([cov.Covariate(*_split(p)) for p in d.propensity] if d else []) if c not in t1_covs]
    report["table1"] = table1(data, groups, t1_covs + extra, labels_sorted)

    # ---------------------------------------------------------------- Kaplan–Meier, log-rank
    fitters = []
    km_groups = []
    for label in labels_sorted:
        m = g == label
        kmf, summary = kaplan_meier(durations[m], events[m], label)
        fitters.append(kmf)
        km_groups.append(summary)
        if summary["events"] < MIN_EVENTS:
            warnings.append({"kind": "small_group", "message": f"{label}: {summary['events']} event(s) "
                             f"(fewer than {MIN_EVENTS}); its estimates are imprecise and shown with that caveat"})
    report["kaplan_meier"] = {"groups": km_groups, "logrank": logrank(durations, events, g)}

    # ---------------------------------------------------------------- Cox
    report["cox"] = _cox(data, g, labels_sorted, durations, events, covs, d, warnings)

    # ---------------------------------------------------------------- beside the literature
    lit = beside(data, groups, kb, endpoint)
    report["literature"] = {g_: [{k: v for k, v in item.items() if k != "arms"} |
                                 {"arms": [{k: v for k, v in a.items() if k != "curve"} for a in item["arms"]]}
                                 for item in items] for g_, items in lit.items()}

    # ---------------------------------------------------------------- design
    matched_fitters: list[Any] = []
    if d is not None:
        report["propensity"], matched_fitters = _matched(data, g, durations, events, d, seed, caliper_sd, warnings)

    if figures:
        from .plots import km_figure

        label = ENDPOINTS[endpoint]["label"]
        result.figures["km"] = km_figure(fitters, f"{label.capitalize()} by {_lower_first(group_title)} "
                                         f"(n = {data.height:,})", label)
        for i, label_g in enumerate(labels_sorted):
            drawn = [c for c in lit.get(label_g, []) if c["drawn"]]
            if drawn:
                result.figures[f"literature:{label_g}"] = km_figure(
                    [fitters[i]], f"{label_g}: this centre (n = {km_groups[i]['n']:,}) beside published cohorts",
                    label, published=drawn)
        if matched_fitters:
            from ..outcomes import cohort_arms

            published = []
            if d.published_cohort:
                arms = cohort_arms(kb)[d.published_cohort]
                published = [{"source_label": arms[0]["source_label"], "title": arms[0]["title"], "arms": arms}]
            result.figures["matched"] = km_figure(
                matched_fitters, f"Propensity-matched: {report['propensity']['pairs']} pairs", label, published=published)
    return result


def _lower_first(text: str) -> str:
    """'Treatment' -> 'treatment', but 'WHO grade' stays."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _split(spec: str) -> tuple[str, str | None]:
    name, _, level = spec.partition(":")
    return name, level or None


def _cox(data: pl.DataFrame, g: np.ndarray, labels_sorted: list[str], durations: np.ndarray, events: np.ndarray,
         covs: list[cov.Covariate], d: Design | None, warnings: list[dict[str, str]]) -> dict[str, Any] | None:
    if d is not None:
        reference = d.control_label
    else:
        counts = {lb: int((g == lb).sum()) for lb in labels_sorted}
        reference = max(labels_sorted, key=lambda lb: (counts[lb], lb)) if labels_sorted else None
    group_cols = [(g == lb).astype(float) for lb in labels_sorted if lb != reference]
    group_terms = [cov.Term(f"group={lb}", f"{lb} vs {reference}", "group") for lb in labels_sorted if lb != reference]
    matrix, terms, complete = cov.design(data, covs)
    full = np.column_stack(group_cols + [matrix]) if group_cols or matrix.shape[1] else np.empty((len(g), 0))
    if full.shape[1] == 0:
        return None
    left_out = int((~complete).sum())
    res = fit_cox(durations[complete], events[complete], full[complete], group_terms + terms)
    res["reference_group"] = reference
    res["left_out_unknown_covariate"] = left_out
    res["covariates"] = [c.spec for c in covs]
    if left_out:
        warnings.append({"kind": "complete_case", "message": f"Cox model: {left_out} patient(s) with an unknown "
                         "covariate left out (complete-case analysis; unknown values are not imputed)"})
    warnings += [{"kind": "cox", "message": f"Cox model: {w}"} for w in res.pop("warnings")]
    return res


def _matched(data: pl.DataFrame, g: np.ndarray, durations: np.ndarray, events: np.ndarray, d: Design, seed: int,
             caliper_sd: float, warnings: list[dict[str, str]]) -> tuple[dict[str, Any], list[Any]]:
    covs = [cov.Covariate(*_split(p)) for p in d.propensity]
    covs = [c for c in covs if c.name in data.columns]
    treated_all = g == d.treated_label
    matrix, terms, complete = cov.design(data, covs)
    out: dict[str, Any] = {"design": d.id, "treated": d.treated_label, "control": d.control_label,
                           "covariates": [c.spec for c in covs], "covariate_labels": [c.label for c in covs],
                           "caliper_sd": caliper_sd, "matching": "greedy 1:1 nearest neighbour on the logit of the "
                           "propensity score, without replacement, treated patients in a seeded random order",
                           "seed": seed, "citation": d.citation}
    n_unknown = int((~complete).sum())
    out["left_out_unknown_covariate"] = n_unknown
    if n_unknown:
        warnings.append({"kind": "complete_case", "message": f"propensity model: {n_unknown} patient(s) with an unknown "
                         "covariate have no score and were not matched"})
    X, tr = matrix[complete], treated_all[complete]
    if tr.all() or not tr.any():
        warnings.append({"kind": "propensity", "message": "only one arm of the design is present: no matching"})
        out["pairs"] = 0
        return out, []
    try:
        ps, info = propensity_scores(X, tr)
    except ValueError as exc:
        warnings.append({"kind": "propensity", "message": f"{exc}: no matching"})
        out["pairs"] = 0
        return out, []
    logit = np.log(ps / (1 - ps))
    caliper = caliper_sd * float(np.std(logit, ddof=1))
    pairs = greedy_match(logit, tr, caliper, seed)
    out.update(info)
    if not info["converged"] or info["fit_notes"]:
        warnings.append({"kind": "propensity", "message": "propensity model: " + (
            "the maximum-likelihood fit did not converge (a covariate may nearly separate the arms); "
            if not info["converged"] else "") + "; ".join(info["fit_notes"])})
    out["caliper"] = caliper
    out["pairs"] = len(pairs)
    out["treated_unmatched"] = int(tr.sum()) - len(pairs)
    out["control_unmatched"] = int((~tr).sum()) - len(pairs)
    matched = np.zeros(len(tr), dtype=bool)
    pair_id = np.full(len(tr), -1)
    for k, (a, b) in enumerate(pairs):
        matched[a] = matched[b] = True
        pair_id[a] = pair_id[b] = k
    out["balance"] = balance(X, terms, tr, matched, logit)
    bad = [b["term"] for b in out["balance"] if b["smd_after"] is not None and not b["balanced_after"]]
    if bad:
        warnings.append({"kind": "balance", "message": "after matching, |SMD| ≥ 0.1 for: " + "; ".join(bad)})
    if not pairs:
        warnings.append({"kind": "propensity", "message": "no pair within the caliper: no matched comparison"})
        return out, []
    dur, ev = durations[complete][matched], events[complete][matched]
    arm = np.where(tr[matched], d.treated_label, d.control_label)
    fitters, km = [], []
    for label in (d.treated_label, d.control_label):
        kmf, s = kaplan_meier(dur[arm == label], ev[arm == label], label)
        fitters.append(kmf)
        km.append(s)
        if s["events"] < MIN_EVENTS:
            warnings.append({"kind": "small_group", "message": f"matched {label}: {s['events']} event(s) "
                             f"(fewer than {MIN_EVENTS}); its estimates are imprecise"})
    term = [cov.Term("treated", f"{d.treated_label} vs {d.control_label}", "group")]
    cox = fit_cox(dur, ev, tr[matched].astype(float)[:, None], term, cluster=pair_id[matched])
    warnings += [{"kind": "cox", "message": f"matched Cox model: {w}"} for w in cox.pop("warnings")]
    out["matched"] = {"kaplan_meier": km, "logrank": logrank(dur, ev, arm), "cox": cox,
                      "variance": "robust (sandwich) standard errors clustered on the matched pairs"}
    subgroups = []
    sub_frame = data.filter(pl.Series(complete))
    for label, sql in d.subgroups:
        inside = sub_frame.select(pl.sql_expr(sql).fill_null(False)).to_series().to_numpy()[matched]
        arms_in = arm[inside]
        entry: dict[str, Any] = {"subgroup": label, "condition": sql, "n": int(inside.sum()),
                                 "treated": int((arms_in == d.treated_label).sum()),
                                 "control": int((arms_in == d.control_label).sum())}
        if entry["treated"] and entry["control"]:
            entry["kaplan_meier"] = [kaplan_meier(dur[inside][arms_in == lb], ev[inside][arms_in == lb], lb)[1]
                                     for lb in (d.treated_label, d.control_label)]
            entry["logrank"] = logrank(dur[inside], ev[inside], arms_in)
            events_in = int(ev[inside].sum())
            if events_in < MIN_EVENTS:
                warnings.append({"kind": "small_group", "message": f"matched subgroup {label}: {events_in} event(s) "
                                 f"(fewer than {MIN_EVENTS})"})
        subgroups.append(entry)
    out["matched"]["subgroups"] = subgroups
    out["matched"]["note"] = ("Subgroups are of matched patients, as in the published Figure 2B; the pairs are "
                              "not re-formed within a subgroup")
    return out, fitters


def _recipe(source: str, d: Design | None, group: str | None, covs: list[cov.Covariate], endpoint: str,
            seed: int, caliper_sd: float) -> dict[str, Any]:
    args = ["nelm", "cohort", source]
    if d is not None:
        args += ["--design", d.id]
    if group and group != "treatment":
        args += ["--group", group]
    if covs:
        args += ["--covariates", ",".join(c.spec for c in covs)]
    args += ["--endpoint", endpoint]
    if seed:
        args += ["--seed", str(seed)]
    if caliper_sd != CALIPER_SD:
        args += ["--caliper", f"{caliper_sd:g}"]
    steps = [
        "Rows read with nelm screen's reader and validated by the patient model; derived variables (grade, "
        "category, Frilling type, burden band, criteria, verdicts, plan) computed by the engine (evaluate_frame).",
        "Rows whose endpoint is not recorded, or whose group is unknown, excluded and counted.",
        "Table 1 by group: mean (SD) and median [IQR], n (%) of known values, unknown counted; standardized mean "
        "differences.",
        "Kaplan–Meier per group (lifelines), 95 % confidence bands (exponential Greenwood), medians with 95 % CI, "
        "survival at 1, 3, 5 and 10 years (not past the last follow-up); log-rank test.",
        "Cox proportional hazards (lifelines CoxPHFitter) on the group (reference: "
        + ("the control arm" if d else "the largest group") + ") and the covariates"
        + (" (by default the propensity model's: regression adjustment beside the matched comparison)" if d else "")
        + "; complete cases; "
        "Schoenfeld-residual test of proportional hazards (rank time), p < 0.05 warned.",
        "Published reconstructed curves for the same option, endpoint and population (knowledge/outcomes.yaml, "
        "as for one patient's assessment) listed by the share of the group's patients they apply to; those that "
        "apply to at least a quarter drawn beside the centre's curve.",
    ]
    if d is not None:
        steps += [
            f"Design {d.id}: {d.title}; arms {d.treated_label} ({', '.join(d.treated)}) and {d.control_label} "
            f"({', '.join(d.control)}).",
            "Propensity score: logistic regression (statsmodels) of the treated arm on " + ", ".join(d.propensity) + ".",
            f"Matching: greedy 1:1 nearest neighbour on the logit of the score, without replacement, caliper "
            f"{caliper_sd:g} SD of the logit (Austin 2011), seed {seed}; balance as SMD before and after.",
            "Matched comparison: Kaplan–Meier and log-rank; Cox hazard ratio with robust standard errors clustered "
            "on the pairs; the published subgroups within the matched patients.",
        ]
    return {"command": " ".join(args), "design": d.id if d else None, "group": group, "endpoint": endpoint,
            "covariates": [c.spec for c in covs], "seed": seed, "caliper_sd": caliper_sd, "steps": steps,
            "python": sys.version.split()[0]}

"""Synthetic patients (``nelm synth``): valid documents with the reviews' marginals.

The distributions are data (``knowledge/synthetic/population.yaml``, each number with
the sentence of the review it comes from, or marked as an assumption); the fields the
reviews say nothing about are drawn from :data:`nelm.testing.FIELD_VALUES`, values placed
around the knowledge base's thresholds. Draws are vectorised (numpy) and seeded: the same
``--seed`` gives the same table. Combinations the patient model refuses (a poorly
differentiated G1, a single lesion counted as eight, sites listed without extrahepatic
disease, ...) are never produced: each dependent field is drawn given the one it
depends on, and every field is then unknown with probability ``unknown_fraction``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..knowledge import KNOWLEDGE_DIR
from ..patient import SCALAR_FIELDS
from ..testing import FIELD_VALUES
from ..yamlio import read_yaml
from .layout import PRIOR, PRIOR_STRUCT, SCHEMA, SITES

POPULATION = KNOWLEDGE_DIR / "synthetic" / "population.yaml"
_PANCREATIC_SYNDROMES = ["insulinoma", "gastrinoma", "glucagonoma", "vipoma", "other"]


def _choice(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


def _uniform(rng: np.random.Generator, lo: float, hi: float, n: int, digits: int = 1) -> np.ndarray:
    return np.round(rng.uniform(lo, hi, n), digits)


def synthesize(n: int, seed: int = 0, unknown_fraction: float = 0.0) -> pl.DataFrame:
    """``n`` synthetic patients in the screening layout (:data:`nelm.screen.layout.SCHEMA`)."""
    if not 0 <= unknown_fraction <= 1:
        raise ValueError("unknown_fraction must be between 0 and 1")
    pop = read_yaml(POPULATION)
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for field in SCALAR_FIELDS:   # the fields the reviews say nothing about
        values = FIELD_VALUES.get(field)
        if values is not None:
            cols[field] = np.array(values, dtype=object)[rng.integers(0, len(values), n)]
    for field, weights in pop["fields"].items():   # fitness and organ function: weighted (assumptions)
        if field not in SCALAR_FIELDS:
            raise ValueError(f"{POPULATION.name}: fields: {field!r} is not a scalar field of the patient document")
        cols[field] = _choice(rng, weights, n)

    site = _choice(rng, pop["primary_site"]["values"], n)
    cols["primary.site"] = site
    grade = _choice(rng, pop["grade"]["values"], n)
    ki67 = np.empty(n)
    for g, (lo, hi) in pop["grade"]["ki67_percent"].items():
        m = grade == g
        ki67[m] = _uniform(rng, lo, hi, int(m.sum()))
    cols["pathology.ki67_percent"] = ki67
    # mitoses in the same WHO band as Ki-67, so that both indices give the drawn grade
    band = np.where(ki67 < 3, 0, np.where(ki67 <= 20, 1, 2))
    mitoses = np.array([rng.integers(0, 2, n), rng.integers(2, 21, n), rng.integers(21, 60, n)])[band, np.arange(n)]
    cols["pathology.mitoses_per_10hpf"] = mitoses.astype(float)
    cols["pathology.differentiation"] = np.where(grade == "NEC", "poor", "well").astype(object)
    cols["pathology.reported_grade"] = np.full(n, None, dtype=object)

    functional = rng.random(n) < pop["functional_syndrome"]["functional_share"]
    pancreatic = rng.choice(_PANCREATIC_SYNDROMES, n)
    cols["functional_syndrome"] = np.where(functional, np.where(site == "pancreas", pancreatic, "carcinoid"),
                                           "none").astype(object)
    cols["functional_control"] = np.where(functional, cols.get("functional_control", np.full(n, None)), None)
    # the overall symptomatic share as published; functional tumours are symptomatic
    share = (pop["symptomatic"]["share"] - pop["functional_syndrome"]["functional_share"]) / \
        (1 - pop["functional_syndrome"]["functional_share"])
    cols["symptomatic"] = functional | (rng.random(n) < share)

    cols["liver.timing"] = _choice(rng, pop["liver_timing"]["values"], n)
    cols["liver.lobes"] = _choice(rng, pop["liver_lobes"]["values"], n)
    bands = pop["liver_burden"]["bands"]
    which = _choice(rng, {k: v["share"] for k, v in bands.items()}, n)
    burden = np.empty(n)
    for k, v in bands.items():
        m = which == k
        burden[m] = np.round(rng.uniform(*v["percent"], int(m.sum())))
    cols["liver.burden_percent"] = burden
    pattern = _choice(rng, pop["liver_pattern"]["values"], n)
    cols["liver.pattern"] = pattern
    cols["liver.lesion_count"] = np.where(pattern == "single", 1,
                                          np.where(pattern == "disseminated", rng.integers(10, 60, n),
                                                   rng.integers(2, 10, n))).astype(float)
    resectable = (pattern != "disseminated") & (rng.random(n) < pop["complete_resection"]["share"])
    partial = np.array([0, 20, 50, 70, 80, 90, 95], dtype=float)[rng.integers(0, 7, n)]
    cols["liver.resectable_fraction_percent"] = np.where(resectable, 100.0, partial)
    cols["liver.resectable"] = np.full(n, None, dtype=object)   # follows from the percentage
    normal = cols["liver.liver_function"] == "normal"
    cols["liver.child_pugh"] = np.where(normal, "A", _choice(rng, pop["child_pugh_when_impaired"]["values"], n)
                                        ).astype(object)

    ehd = pop["extrahepatic"]
    present = rng.random(n) < ehd["present_share"]
    names = list(ehd["site_weights"])
    p = np.array(list(ehd["site_weights"].values()))
    chosen = rng.random((n, len(names))) < np.clip(p * 1.5, 0, 1)
    chosen[np.arange(n), rng.choice(len(names), n, p=p / p.sum())] = True   # at least one site
    chosen &= present[:, None]
    rows, which_site = np.nonzero(chosen)
    sites = _lists(n, rows, pl.Series(np.array(names, dtype=object)[which_site], dtype=pl.String))
    peritoneum = chosen[:, names.index("peritoneum")]
    cols["extrahepatic.present"] = present
    cols[SITES] = sites
    cols["extrahepatic.peritoneal_carcinomatosis"] = np.where(
        peritoneum, np.where(rng.random(n) < 0.5, "limited_resectable", "diffuse_unresectable"), "none").astype(object)
    cols["extrahepatic.symptomatic"] = np.where(present, cols["extrahepatic.symptomatic"], False)
    cols["extrahepatic.resectable"] = np.where(present, cols["extrahepatic.resectable"], None)
    diffuse = cols["extrahepatic.peritoneal_carcinomatosis"] == "diffuse_unresectable"
    cols["extrahepatic.resectable"] = np.where(diffuse & (cols["extrahepatic.resectable"] == True), False,  # noqa: E712
                                               cols["extrahepatic.resectable"])
    # the peritoneum the only site, limited and resectable: the extrahepatic disease is removable
    # (consistency.yaml, unresectable_extrahepatic_vs_limited_peritoneum_only)
    only_peritoneum = peritoneum & (chosen.sum(axis=1) == 1)
    limited = cols["extrahepatic.peritoneal_carcinomatosis"] == "limited_resectable"
    cols["extrahepatic.resectable"] = np.where(only_peritoneum & limited & (cols["extrahepatic.resectable"] == False),  # noqa: E712
                                               True, cols["extrahepatic.resectable"])

    img = cols["sstr_imaging"]
    cols["sstr_uptake_krenning"] = np.where(img == "positive", rng.integers(2, 5, n), rng.integers(0, 2, n)).astype(float)

    cols[PRIOR] = _prior(rng, pop["prior_therapies"], n)
    cols["id"] = [f"synth-{seed}-{i + 1:07d}" for i in range(n)]

    frame = pl.DataFrame({c: cols[c] if isinstance(cols[c], pl.Series) else list(cols[c]) for c in SCHEMA},
                         schema=SCHEMA, strict=False)
    frame = _plausible(frame)
    if unknown_fraction:
        frame = _unknowns(frame, rng, unknown_fraction)
    return frame


def _plausible(frame: pl.DataFrame) -> pl.DataFrame:
    """Independent draws made to agree with knowledge/consistency.yaml, as nelm.testing's
    generators are: a burden the lesions can hold (its plausibility bounds), a resected
    primary is a known one, stable for 12 months or more means no progression within 12,
    no duration longer than the patient's life (prior therapies are drawn with months to
    progression of 3-40 and ongoing unknown, inside the checks already)."""
    n, size, burden = pl.col("liver.lesion_count"), pl.col("liver.largest_lesion_cm"), pl.col("liver.burden_percent")
    most = (pl.when(n == 1).then(pl.when(size <= 2).then(5).when(size <= 5).then(25).when(size <= 10).then(80)
                                 .otherwise(100))
            .when((n >= 2) & (n <= 10) & (size <= 2)).then(25).otherwise(100)).cast(pl.Float64)
    least = pl.when(size >= 30).then(25).when(size >= 20).then(10).when(size >= 10).then(1).otherwise(0).cast(pl.Float64)
    age_months = pl.col("age_years") * 12
    stable = pl.col("course.stable_months")
    stable = pl.when((pl.col("course.status") == "stable") & pl.col("course.progression_within_12_months")
                     & (stable >= 12)).then(6.0).otherwise(stable)
    return frame.with_columns(
        pl.when(burden.is_null() | n.is_null() | size.is_null()).then(burden)
        .otherwise(pl.min_horizontal(pl.max_horizontal(burden, least), most)).alias("liver.burden_percent"),
        pl.when((pl.col("primary.site") == "unknown_primary") & pl.col("primary.resected")).then(False)
        .otherwise(pl.col("primary.resected")).alias("primary.resected"),
        pl.when(stable > age_months).then(age_months).otherwise(stable).alias("course.stable_months"),
    )


# --------------------------------------------------------------------------- registry

def _published_curve(source: str, arm: str, endpoint: str) -> tuple[np.ndarray, np.ndarray]:
    """Months and cumulative hazard of the curve nelm.outcomes draws for a record's arm."""
    from ..knowledge import load
    from ..outcomes.curves import fit, reported_points

    rec = load().evidence.get(source)
    if rec is None:
        raise ValueError(f"{POPULATION.name}: registry: unknown evidence record {source!r}")
    curve = np.array(fit(reported_points(rec.outcomes, endpoint, arm)).curve, dtype=float)
    months, surv = curve[:, 0], np.clip(curve[:, 1], 1e-9, 1.0)
    return months, -np.log(surv)


def _draw_times(u: np.ndarray, months: np.ndarray, cumhaz: np.ndarray, lp: np.ndarray) -> np.ndarray:
    """Event times with survival S0(t) ** exp(lp) (proportional hazards on the published
    curve) for uniform draws ``u``, by inverting its cumulative hazard; past the curve's
    end the last interval's hazard goes on."""
    target = -np.log(u) / np.exp(lp)
    slope = (cumhaz[-1] - cumhaz[-2]) / (months[-1] - months[-2]) if len(months) > 1 else cumhaz[-1] / months[-1]
    inside = np.interp(target, cumhaz, months)
    beyond = months[-1] + (target - cumhaz[-1]) / max(slope, 1e-9)
    return np.where(target <= cumhaz[-1], inside, beyond)


def _centre(lp: np.ndarray) -> float:
    """The shift c for which the modality's patients, with hazards exp(lp - c) times the
    published curve's, have the published median as their median: the mean over patients
    of S(m | x) = 0.5 ** exp(lp - c) is 1/2 at the published median m, whatever the
    curve's shape (solved by bisection)."""
    lo, hi = -20.0, 20.0
    for _ in range(80):
        c = (lo + hi) / 2
        if np.mean(0.5 ** np.exp(lp - c)) < 0.5:
            lo = c
        else:
            hi = c
    return (lo + hi) / 2


def registry_truth() -> dict[str, Any]:
    """What ``nelm synth --registry`` draws from: each modality's options and published
    median (the median of the modality's patients as drawn), and each prognostic factor's
    hazard ratio (conditional, the same within every modality), read from the evidence records."""
    from ..knowledge import load

    spec = read_yaml(POPULATION)["registry"]
    kb = load()
    out: dict[str, Any] = {"modalities": {}, "prognostic": []}
    for name, m in spec["modalities"].items():
        entry: dict[str, Any] = {"options": list(m["options"])}
        for endpoint in ("os", "pfs"):
            if endpoint in m:
                months, cumhaz = _published_curve(m[endpoint]["source"], m[endpoint]["arm"], endpoint)
                entry[f"{endpoint}_median_months"] = float(np.interp(np.log(2), cumhaz, months)) \
                    if cumhaz[-1] >= np.log(2) else None
                entry[f"{endpoint}_source"] = m[endpoint]["source"]
        out["modalities"][name] = entry
    for p in spec["prognostic"]:
        rec = kb.evidence[p["source"]]
        hr = next((o.value for o in rec.outcomes if o.endpoint == "hazard_ratio" and o.arm == p["arm"]), None)
        if hr is None:
            raise ValueError(f"{POPULATION.name}: registry: record {p['source']} has no hazard ratio {p['arm']!r}")
        out["prognostic"].append({**p, "hazard_ratio": float(hr)})
    return out


def synthesize_registry(n: int, seed: int = 0, unknown_fraction: float = 0.0) -> pl.DataFrame:
    """Synthetic patients with ``treatment`` (an option id), ``time_months``, ``event``
    (1 died, 0 alive at last follow-up), ``progression_months`` and ``progression_event``
    (null where the modality has no published PFS): the input of ``nelm cohort``.

    Treatment follows the patient (``registry.assignment``: confounding by indication, as
    in the surgical and IAT series); overall survival is drawn from the modality's
    published curve with the prognostic hazard ratios of ``registry.prognostic``
    (proportional hazards, centred so that the modality's patients have the published
    median overall: :func:`_centre`);
    follow-up ends at the data cut or at loss to follow-up. Facts are hidden
    (``unknown_fraction``) after treatment and outcome were drawn from the full facts."""
    spec = read_yaml(POPULATION)["registry"]
    truth = registry_truth()
    patients = synthesize(n, seed=seed)
    rng = np.random.default_rng([seed, 23])
    grade_nec = patients["pathology.differentiation"].to_numpy() == "poor"
    sstr = (patients["sstr_imaging"] == "positive").fill_null(False).to_numpy()
    burden = patients["liver.burden_percent"].to_numpy()
    ehd = patients["extrahepatic.present"].fill_null(False).to_numpy()
    unknown_primary = (patients["primary.site"] == "unknown_primary").to_numpy()
    disseminated = (patients["liver.pattern"] == "disseminated").to_numpy()
    symptomatic = patients["symptomatic"].fill_null(False).to_numpy()
    a = spec["assignment"]
    c = a["surgery_log_odds"]
    log_odds = (c["intercept"] + c["per_10_percent_burden"] * (burden - 25) / 10 + c["extrahepatic"] * ehd
                + c["unknown_primary"] * unknown_primary + c["disseminated"] * disseminated + c["symptomatic"] * symptomatic)
    surgery = rng.random(n) < 1 / (1 + np.exp(-log_odds))
    prrt = sstr & (rng.random(n) < a["prrt_share"])
    modality = np.where(grade_nec, "nec_chemotherapy", np.where(prrt, "prrt", np.where(surgery, "surgery", "intra_arterial")))

    lp = np.zeros(n)
    for p in truth["prognostic"]:
        values = patients[p["field"]].to_numpy()
        lp += np.log(p["hazard_ratio"]) * (values == p["value"])
    treatment = np.empty(n, dtype=object)
    death = np.empty(n)
    pfs = np.full(n, np.nan)
    for name, m in spec["modalities"].items():
        rows = np.nonzero(modality == name)[0]
        if not len(rows):
            continue
        treatment[rows] = _choice(rng, m["options"], len(rows))
        shifted = lp[rows] - _centre(lp[rows])
        u = rng.random(len(rows))
        months, cumhaz = _published_curve(m["os"]["source"], m["os"]["arm"], "os")
        death[rows] = _draw_times(u, months, cumhaz, shifted)
        if "pfs" in m:
            # the same draw on the PFS curve (progression or death): a patient's PFS and OS
            # are ranked alike, and PFS never exceeds OS where the PFS curve lies below
            months, cumhaz = _published_curve(m["pfs"]["source"], m["pfs"]["arm"], "pfs")
            pfs[rows] = np.minimum(_draw_times(u, months, cumhaz, shifted), death[rows])
    f = spec["follow_up"]
    cut = f["minimum_months"] + rng.uniform(0, f["accrual_months"], n)
    lost = rng.exponential(12 / f["loss_per_year"], n)
    censor = np.minimum(cut, lost)
    time = np.minimum(death, censor)
    has_pfs = ~np.isnan(pfs)
    prog_time = np.where(has_pfs, np.minimum(pfs, censor), np.nan)
    outcome = pl.DataFrame({
        "treatment": pl.Series(treatment, dtype=pl.String),
        "time_months": np.round(time, 2),
        "event": (death <= censor).astype(np.int64),
        "progression_months": pl.Series(np.round(prog_time, 2)).fill_nan(None),
        "progression_event": pl.Series(np.where(has_pfs, (pfs <= censor).astype(float), np.nan)).fill_nan(None).cast(pl.Int64),
    })
    if unknown_fraction:
        patients = _unknowns(patients, np.random.default_rng([seed, 24]), unknown_fraction)
    return patients.hstack(outcome)


def _lists(n: int, rows: np.ndarray, values: pl.Series) -> pl.Series:
    """Per row the values whose row index is ``rows`` (sorted), an empty list for the others."""
    grouped = pl.DataFrame({"r": rows, "v": values}).group_by("r", maintain_order=True).agg(pl.col("v"))
    full = pl.DataFrame({"r": np.arange(n, dtype=rows.dtype)}).join(grouped, on="r", how="left", maintain_order="left")
    return full["v"].fill_null(pl.lit([], dtype=pl.List(values.dtype)))


def _prior(rng: np.random.Generator, spec: dict[str, Any], n: int) -> pl.Series:
    weights = np.array(spec["count_weights"], dtype=float)
    counts = rng.choice(len(weights), n, p=weights / weights.sum())
    therapies = np.array(spec["therapies"], dtype=object)
    outcomes = np.array(list(spec["outcomes"]), dtype=object)
    po = np.array(list(spec["outcomes"].values()), dtype=float)
    k = len(weights) - 1
    # k different therapies per row (a random order of all of them, the first ``count`` kept)
    order = np.argsort(rng.random((n, len(therapies))), axis=1)[:, :k]
    outcome = rng.choice(len(outcomes), (n, k), p=po / po.sum())
    months = rng.integers(3, 40, (n, k)).astype(float)
    keep = np.arange(k)[None, :] < counts[:, None]
    rows, slot = np.nonzero(keep)
    out = outcomes[outcome[rows, slot]]
    m = np.where((out == "progression") & (rng.random(len(rows)) < 0.5), months[rows, slot], np.nan)
    records = pl.DataFrame({"therapy": pl.Series(therapies[order[rows, slot]], dtype=pl.String),
                            "outcome": pl.Series(out, dtype=pl.String),
                            "months_to_progression": pl.Series(m).fill_nan(None),
                            "ongoing": pl.Series([None] * len(rows), dtype=pl.Boolean)})
    return _lists(n, rows, records.select(pl.struct(pl.all()).alias("v"))["v"]).cast(pl.List(PRIOR_STRUCT))


def _unknowns(frame: pl.DataFrame, rng: np.random.Generator, share: float) -> pl.DataFrame:
    """Each field of each patient unknown with probability ``share`` (lists as a whole;
    a prior therapy's outcome on its own)."""
    cols = []
    for name in frame.columns:
        if name == "id":
            cols.append(frame[name])
            continue
        hide = pl.Series(rng.random(frame.height) < share)
        cols.append(frame.select(pl.when(hide).then(None).otherwise(pl.col(name)).alias(name)).to_series())
    out = pl.DataFrame(cols)
    hide = pl.Series("h", rng.random(out.height) < share)
    return out.with_columns(pl.when(hide).then(pl.col(PRIOR).list.eval(
        pl.struct(pl.element().struct.field("therapy"), pl.lit(None, pl.String).alias("outcome"),
                  pl.lit(None, pl.Float64).alias("months_to_progression"),
                  pl.element().struct.field("ongoing")))).otherwise(pl.col(PRIOR)).alias(PRIOR))


# --------------------------------------------------------------------------- writing

def write_table(frame: pl.DataFrame, path: str | Path) -> None:
    """Write a layout frame as Parquet (flat dotted columns, lists as lists), JSON Lines
    (nested documents) or CSV (flat; lists ``;``-separated, prior therapies as JSON)."""
    from .layout import input_format

    fmt = input_format(path)
    if fmt == "parquet":
        frame.write_parquet(path)
    elif fmt == "jsonl":
        nested(frame).write_ndjson(path)
    else:
        frame.with_columns(
            pl.when(pl.col(SITES).list.len() == 0).then(pl.lit("[]"))
              .otherwise(pl.col(SITES).list.join(";")).alias(SITES),
            pl.col(PRIOR).map_elements(lambda v: json.dumps([{k: x for k, x in p.items() if x is not None} for p in v]),
                                       return_dtype=pl.String, skip_nulls=True).alias(PRIOR),
        ).write_csv(path)


def nested(frame: pl.DataFrame) -> pl.DataFrame:
    """Dotted columns as nested structs: the documents of the contract."""
    top: dict[str, list[str]] = {}
    for c in frame.columns:
        top.setdefault(c.split(".")[0], []).append(c)
    exprs = []
    for name, cols in top.items():
        if cols == [name]:
            exprs.append(pl.col(name))
        else:
            exprs.append(pl.struct([pl.col(c).alias(c.split(".", 1)[1]) for c in cols]).alias(name))
    return frame.select(exprs)


__all__ = ["synthesize", "synthesize_registry", "registry_truth", "write_table", "nested", "PRIOR_STRUCT"]

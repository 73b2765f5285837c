"""The engine's flat view of patients (:func:`nelm.patient.flatten`), column-wise.

:func:`flatten` turns one validated patient into one row of the engine's columns; this
module does the same for a whole table with Polars expressions, so that a million rows
need no Python loop. The two must agree value for value, unknowns included:
tests/test_screen_flat.py compares them on random patients for every column.
"""
from __future__ import annotations

from typing import Any

import polars as pl

from .. import follows
from ..engine import SCHEMA as ENGINE_SCHEMA
from ..patient import (_COURSE_OUTCOME, _OUTCOME_RANK, OPTION_IDS, SCALAR_FIELDS, SITE_COLUMNS,
                       SYSTEMIC_LINES, column_of)
from .layout import PRIOR, SITES

_RANK_OUTCOME = {rank: outcome for outcome, rank in _OUTCOME_RANK.items() if outcome}
_ABSENT = (("g", pl.Boolean), ("w", pl.String), ("m", pl.Float64), ("o", pl.Boolean))   # a therapy no row was given


def engine_frame(layout: pl.DataFrame, prior: pl.DataFrame | None = None) -> pl.DataFrame:
    """The engine's input frame (``nelm.engine.SCHEMA``) for typed layout rows. ``prior``: the
    rows' treatment-history columns (:func:`prior_columns`) when the caller has them already
    (the plan's what-if rows that change neither the history nor the course)."""
    scalars = [pl.col(f).cast(ENGINE_SCHEMA[column_of(f)]).alias(column_of(f)) for f in SCALAR_FIELDS]
    lf = layout.lazy().select(pl.col("__row"), pl.col(SITES), pl.col(PRIOR), *scalars)
    sites = pl.col(SITES)
    # an empty list says "no sites" only when extrahepatic disease is known to be absent
    known_sites = sites.is_not_null() & ((sites.list.len() > 0) | (pl.col("extrahepatic_present") == False).fill_null(False))  # noqa: E712
    lf = lf.with_columns(
        *[pl.when(known_sites).then(sites.list.contains(col.removeprefix("extrahepatic_sites_"))).alias(col)
          for col in SITE_COLUMNS],
        *follows_columns(),
    )
    frame = lf.collect()
    frame = frame.hstack(prior_columns(frame) if prior is None else prior)
    return frame.select(pl.col(c).cast(t) for c, t in ENGINE_SCHEMA.items())


def follows_columns() -> list[pl.Expr]:
    """The facts that follow from facts (knowledge/follows.yaml), column-wise: while a column is
    unknown, the first record whose condition holds on the recorded columns gives its value
    (every expression reads the frame as it was: one ``with_columns``)."""
    out = []
    for col, recs in follows.by_column().items():
        unknown = pl.col(col).is_null()
        chain: Any = pl
        for r in recs:
            chain = chain.when(unknown & pl.sql_expr(r.when).fill_null(False)).then(pl.lit(r.value))
        out.append(chain.otherwise(pl.col(col)).alias(col))
    return out


def prior_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """The engine's treatment-history columns of rows with ``__row``, the history list and
    ``course_status`` (the course decides an ongoing therapy's unrecorded outcome)."""
    return _prior_columns(frame.select("__row", PRIOR, "course_status")).drop("__row")


def _prior_columns(prior: pl.DataFrame) -> pl.DataFrame:
    """Per therapy: worst outcome (``none``, or NULL while an outcome is unrecorded: see
    :func:`nelm.patient.worst_outcome`), shortest months to progression, ongoing; and the
    counts of therapies progressed on (NULL while an outcome is unknown) and of systemic lines."""
    known = prior[PRIOR].is_not_null()
    items = (prior.with_row_index("__i").explode(PRIOR).filter(pl.col(PRIOR).is_not_null())
             .select("__i", "course_status", pl.col(PRIOR).struct.unnest()))
    # an ongoing therapy's unrecorded outcome is the current course
    outcome = pl.coalesce(pl.col("outcome"), pl.when(pl.col("ongoing").fill_null(False)).then(
        pl.col("course_status").cast(pl.String).replace_strict(_COURSE_OUTCOME, default=None, return_dtype=pl.String)))
    per = items.with_columns(outcome=outcome).group_by("__i", "therapy").agg(
        rank=pl.col("outcome").replace_strict(_OUTCOME_RANK, default=-1, return_dtype=pl.Int8).max(),
        unknown=pl.col("outcome").is_null().any(),
        months=pl.col("months_to_progression").min(),
        ongoing=pl.when(pl.col("ongoing").fill_null(False).any()).then(True)
               .when((pl.col("ongoing") == False).all(ignore_nulls=False)).then(False),  # noqa: E712
    ).with_columns(worst=pl.when(~pl.col("unknown") | (pl.col("rank") == _OUTCOME_RANK["intolerance"]))
                   .then(pl.col("rank").replace_strict(_RANK_OUTCOME, default=None, return_dtype=pl.String)))
    counts = per.group_by("__i").agg(
        prior_progression_count=pl.when(pl.col("worst").is_null().any()).then(None).otherwise(
            (pl.col("worst") == "progression").sum()).cast(pl.Float64),
        prior_systemic_lines=pl.col("therapy").filter(pl.col("therapy").is_in(SYSTEMIC_LINES)).n_unique().cast(pl.Float64),
    )
    base = pl.DataFrame({"__i": pl.int_range(0, prior.height, eager=True, dtype=pl.UInt32), "__known": known})
    # each therapy's columns put in place by row number (a row has one group per therapy it was given)
    n = prior.height
    side = []
    for t, one in per.filter(pl.col("therapy").is_in(OPTION_IDS)).partition_by("therapy", as_dict=True).items():
        at = one["__i"]
        side += [pl.repeat(None, n, dtype=pl.Boolean, eager=True).scatter(at, True).alias(f"g_{t[0]}"),
                 pl.repeat(None, n, dtype=pl.String, eager=True).scatter(at, one["worst"]).alias(f"w_{t[0]}"),
                 pl.repeat(None, n, dtype=one["months"].dtype, eager=True).scatter(at, one["months"]).alias(f"m_{t[0]}"),
                 pl.repeat(None, n, dtype=pl.Boolean, eager=True).scatter(at, one["ongoing"]).alias(f"o_{t[0]}")]
    wide = base.hstack(side)
    present = set(wide.columns)
    wide = wide.with_columns(pl.lit(None, dtype=d).alias(f"{k}_{t}") for t in OPTION_IDS for k, d in _ABSENT
                             if f"{k}_{t}" not in present)
    out = [pl.col("__i")]
    for t in OPTION_IDS:
        given = pl.col(f"g_{t}").fill_null(False)
        out += [pl.when(~pl.col("__known")).then(None).when(given).then(pl.col(f"w_{t}")).otherwise(pl.lit("none"))
                  .alias(f"prior_{t}"),
                pl.when(pl.col("__known") & given).then(pl.col(f"m_{t}")).alias(f"prior_{t}_months"),
                pl.when(~pl.col("__known")).then(None).when(given).then(pl.col(f"o_{t}")).otherwise(pl.lit(False))
                  .alias(f"prior_{t}_ongoing")]
    wide = wide.join(counts.with_columns(__any=pl.lit(True)), on="__i", how="left")
    # no record: nothing given, nothing progressed (a count NULL from an unknown outcome stays NULL)
    out.append(pl.when(pl.col("__known") & pl.col("__any").is_null()).then(pl.lit(0.0))
               .when(pl.col("__known")).then(pl.col("prior_progression_count")).alias("prior_progression_count"))
    out.append(pl.when(pl.col("__known")).then(pl.col("prior_systemic_lines").fill_null(0.0)).alias("prior_systemic_lines"))
    return wide.sort("__i").select(out).rename({"__i": "__row"})

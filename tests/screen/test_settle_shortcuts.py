"""The settling's shortcuts (session 16) give what the long way gives, on sparse tables.

- ``_one_at_a_time`` tries each world's n-th field with a record in one pass for all fields:
  the same worlds as trying one field after another in the fields' order (the reference below);
- its consistency checks read the worlds' recorded history columns (``_engine(for_checks=True)``):
  the same verdict as with the history worked out again, because the checks read of it only
  what filling in an outcome cannot change;
- ``_engine`` (the recorded history, the touched worlds' worked out again) equals the engine
  frame worked out from scratch for every world;
- the other values' worlds of a row already made conditional are dropped (``_run(lead=...)``):
  each row differs exactly where it does when every world is settled.
"""
from __future__ import annotations

import polars as pl
import pytest

from nelm.knowledge import load
from nelm.screen import settle
from nelm.screen.flat import engine_frame
from nelm.engine import evaluate_both_passes
from nelm.screen.columns import certain_plans
from nelm.screen.layout import PRIOR
from nelm.screen.synth import synthesize


def _open_rows(n: int, seed: int, unknown: float) -> pl.DataFrame:
    """The rows one evaluation leaves open (as tests/screen/test_settle.py takes them)."""
    kb = load()
    lay = synthesize(n, seed=seed, unknown_fraction=unknown).with_row_index("__row", offset=1)
    eng = engine_frame(lay)
    _, _, rows = certain_plans(lay, eng, evaluate_both_passes(eng, kb)[1], kb)
    return lay[rows]


def _grown(rows: pl.DataFrame, kb, fields: tuple[str, ...] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows' worlds with the fields a record may fill in (or ``fields`` of them) filled by
    their first record where unknown (history and course included), and the rows' recorded
    history columns."""
    base = settle._base(rows, kb).with_columns(pl.col(settle._BASE).alias(settle._W))
    by_field = settle.records_by_field(kb)
    picks = [pl.when(pl.col(f).is_null() if f != PRIOR else pl.lit(True))
             .then(pl.lit(recs[0][0], dtype=pl.Int64)).otherwise(pl.lit(None, dtype=pl.Int64)).alias(f"__pick__{f}")
             if fields is None or f in fields else pl.lit(None, dtype=pl.Int64).alias(f"__pick__{f}")
             for f, recs in sorted(by_field.items())]
    worlds = settle._fill(base.with_columns(picks), by_field).drop([f"__pick__{f}" for f in by_field])
    return worlds, engine_frame(rows).select(settle.HISTORY_COLUMNS)


def test_engine_of_worlds_equals_the_engine_frame_worked_out_from_scratch():
    kb = load()
    rows = _open_rows(600, 31, 0.3)
    worlds, history = _grown(rows, kb)
    touched = ((worlds[settle._FIXED] & settle.HISTORY) != 0)
    assert touched.sum() > 50 and (~touched).sum() >= 0
    mixed = pl.concat([worlds, settle._base(rows, kb).with_columns(pl.col(settle._BASE).alias(settle._W))],
                      how="vertical_relaxed")
    assert settle._engine(mixed, history).equals(engine_frame(settle._layout(mixed)))


def test_checks_of_tries_read_no_history_column_a_filled_outcome_changes():
    kb = load()
    assert settle._checks_keep_history()
    rows = _open_rows(600, 32, 0.3)
    worlds, history = _grown(rows, kb, (PRIOR, "course.status", "liver.burden_percent", "liver.lesion_count"))
    # some therapies with months to progression get another outcome filled in: refused either way
    assert worlds[PRIOR].list.len().fill_null(0).sum() > 100
    full = settle._consistent(worlds, settle._engine(worlds, history))
    quick = settle._consistent(worlds, settle._engine(worlds, history, for_checks=True))
    assert full.equals(quick)
    assert 0 < int(full.sum()) < worlds.height


def _one_field_after_another(worlds, by_field, history):
    """The field-by-field loop _one_at_a_time replaced (session 15), as the reference."""
    cur = worlds.with_row_index("__i")
    took = pl.Series("took", [False] * cur.height)
    picks_all = [f"__pick__{f}" for f in sorted(by_field)]
    for field in sorted(by_field):
        tries = []
        for rank, (i, _) in enumerate(by_field[field]):
            col = f"__usable__{i}"
            if col not in cur.columns or not cur[col].fill_null(False).any():
                continue
            picks = [pl.lit(i if f == field else None, dtype=pl.Int64).alias(f"__pick__{f}") for f in sorted(by_field)]
            tries.append(cur.filter(pl.col(col).fill_null(False)).with_columns(*picks, pl.lit(rank).alias("__rank")))
        if not tries:
            continue
        more = settle._fill(pl.concat(tries, how="vertical_relaxed"), by_field).drop(picks_all)
        ok = settle._consistent(more, settle._engine(more, history))
        if not ok.any():
            continue
        kept = more.filter(ok).sort("__i", "__rank").unique("__i", keep="first", maintain_order=True).drop("__rank")
        hit = cur["__i"].is_in(kept["__i"].implode())
        cur = pl.concat([cur.filter(~hit), kept.select(cur.columns)], how="vertical_relaxed").sort("__i")
        took = took | hit
    return cur.drop("__i"), took


@pytest.mark.parametrize("seed,unknown", [(33, 0.35), (34, 0.5)])
def test_one_at_a_time_in_steps_equals_one_field_after_another(seed, unknown, monkeypatch):
    kb = load()
    rows = _open_rows(700, seed, unknown)
    calls = []
    real = settle._one_at_a_time
    monkeypatch.setattr(settle, "_one_at_a_time", lambda w, b, h: calls.append((w, b, h)) or real(w, b, h))
    settle.settle_plans(rows, kb)
    assert sum(w.height for w, _, _ in calls) > 20
    for worlds, by_field, history in calls:
        got, took = real(worlds, by_field, history)
        want, want_took = _one_field_after_another(worlds, by_field, history)
        assert took.equals(want_took)
        assert got.equals(want)


def test_a_row_made_conditional_needs_none_of_its_other_worlds():
    kb = load()
    rows = _open_rows(700, 35, 0.3)
    base = settle._base(rows, kb)
    eng = engine_frame(rows)
    history = eng.select(settle.HISTORY_COLUMNS)
    work = settle._run(base.with_columns(pl.int_range(0, rows.height, dtype=pl.Int64).alias(settle._W)), kb, history,
                       engine=eng).sort(settle._W)
    seeds, seed_engine = settle._alternative_worlds(base, work.filter(pl.col("settled")), kb, history)
    assert seeds.height > 200

    def differs(alt: pl.DataFrame) -> pl.DataFrame:
        return alt.join(seeds.select(settle._W, settle._BASE, "__lead"), on=settle._W).group_by(settle._BASE).agg(
            differs=(~(pl.col("settled") & pl.col("lead").eq_missing(pl.col("__lead")))).any()).sort(settle._BASE)

    every = settle._run(seeds.drop("__lead"), kb, history)
    short = settle._run(seeds.drop("__lead"), kb, history, engine=seed_engine, lead=seeds.select(settle._W, "__lead"))
    assert short.height < every.height          # some worlds were not needed
    assert differs(short).equals(differs(every))


def test_open_rows_of_consecutive_batches_settled_together_give_each_batch_alone(tmp_path, monkeypatch):
    """nelm screen settles the open rows of consecutive batches together (run.py: at most one
    batch's size of open rows, two batches' of rows): the output equals screening each batch on its
    own, and one batch in all."""
    from nelm.screen import columns, run
    from nelm.screen.synth import write_table

    src = tmp_path / "p.parquet"
    write_table(synthesize(3000, seed=36, unknown_fraction=0.15), src)
    groups = []
    real = columns.settle_open
    monkeypatch.setattr(run, "settle_open", lambda kb, batches: groups.append(len(batches)) or real(kb, batches))
    monkeypatch.setattr(columns, "SETTLE_FROM", 1)   # column-wise whatever the number of open rows
    run.screen(src, tmp_path / "together.parquet", batch_size=1000)
    assert max(groups) >= 2, groups
    one = pl.concat([pl.read_parquet(tmp_path / "together.parquet")])
    run.screen(src, tmp_path / "whole.parquet", batch_size=10_000)
    assert one.equals(pl.read_parquet(tmp_path / "whole.parquet"))
    # and each batch alone (assess_batch: its own open rows only)
    lay = pl.read_parquet(src).with_row_index("__row", offset=1)
    alone = pl.concat([columns.assess_batch(lay.slice(i, 1000), load())[0] for i in range(0, lay.height, 1000)])
    assert one.drop("id").equals(alone)

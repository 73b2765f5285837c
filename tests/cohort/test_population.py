"""The synthetic population looks like a NELM registry, and every marginal says where it
comes from: a record of the evidence base or a source review, or that it is an assumption."""
from __future__ import annotations

import re

import polars as pl
import pytest

from nelm.knowledge import load
from nelm.patient import SCALAR_FIELDS
from nelm.screen.synth import POPULATION, synthesize
from nelm.yamlio import read_yaml


@pytest.fixture(scope="module")
def population() -> pl.DataFrame:
    return synthesize(20_000, seed=7)


def test_fitness_and_organ_function_are_plausible(population):
    share = lambda expr: population.select(expr.mean()).item()  # noqa: E731
    assert share(pl.col("liver.portal_vein_thrombosis").cast(pl.Float64)) < 0.06
    assert share((pl.col("liver.liver_function") == "impaired").cast(pl.Float64)) < 0.12
    assert share((pl.col("ecog") >= 3).cast(pl.Float64)) < 0.08
    assert 0.6 < share(pl.col("symptomatic").cast(pl.Float64)) < 0.74        # Mayo 2011: about two thirds


def test_contraindicated_for_every_liver_directed_therapy_is_not_the_rule(population):
    from nelm.screen.columns import assess_batch
    from nelm.screen.layout import typed

    kb = load()
    liver = ["liver_resection", "thermal_ablation", "tae", "tace", "deb_tace", "sirt"]
    frame = typed(population.head(5000).with_row_index("__row", offset=1))
    out, _ = assess_batch(frame, kb, [f"options.{o}.verdict" for o in liver])
    all_contra = out.select(pl.all_horizontal(pl.col(c) == "contraindicated" for c in out.columns).mean()).item()
    assert all_contra < 0.25, all_contra


def test_every_marginal_is_cited_or_marked_an_assumption():
    text = POPULATION.read_text()
    pop = read_yaml(POPULATION)
    for field in pop["fields"]:
        assert field in SCALAR_FIELDS
        line = next(x for x in text.splitlines() if x.strip().startswith(f"{field}:"))
        assert "assumption" in line, line
    # every other section cites a source review or record, or says assumption, in its comment
    blocks = re.split(r"\n(?=[a-z_]+:)", text)
    for block in blocks:
        name = block.split(":", 1)[0].strip()
        if name.startswith("#") or name in ("fields",):
            continue
        assert re.search(r"review00[02]|assumption|ASSUMPTION|mayo20\d\d|record", block), name
    kb = load()
    for m in pop["registry"]["modalities"].values():
        for endpoint in ("os", "pfs"):
            if endpoint in m:
                assert m[endpoint]["source"] in kb.evidence
    for p in pop["registry"]["prognostic"]:
        assert p["source"] in kb.evidence

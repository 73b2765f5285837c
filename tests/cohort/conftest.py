"""Cohort fixtures: calibrated synthetic registries (nelm synth --registry) written once per session."""
from __future__ import annotations

import polars as pl
import pytest

from nelm.screen.synth import synthesize_registry, write_table

SEED = 11


@pytest.fixture(scope="session")
def big_registry(tmp_path_factory):
    """8,000 patients: enough events for the generating effects to be recovered within their CIs."""
    path = tmp_path_factory.mktemp("cohort") / "registry.parquet"
    write_table(synthesize_registry(8000, seed=SEED), path)
    return path


@pytest.fixture(scope="session")
def small_frame() -> pl.DataFrame:
    return synthesize_registry(120, seed=3)


@pytest.fixture
def small_csv(tmp_path, small_frame):
    path = tmp_path / "small.csv"
    write_table(small_frame, path)
    return path


@pytest.fixture(scope="session")
def design_result(big_registry):
    from nelm.cohort.analysis import analyse

    return analyse(big_registry, design="mayo2011",
                   covariates="liver.timing,functional_syndrome:none,extrahepatic.present", figures=False)

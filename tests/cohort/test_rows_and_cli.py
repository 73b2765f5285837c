"""Bad rows named by row number and field (never dropped silently), exclusions counted,
small groups warned and still shown, the JSON's shape, the HTML's tables, exit codes."""
from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from nelm.cohort.analysis import analyse
from nelm.screen.synth import write_table


def _csv(tmp_path, frame: pl.DataFrame, name: str = "registry.csv"):
    path = tmp_path / name
    write_table(frame, path)
    return path


def _set(frame: pl.DataFrame, row: int, column: str, value) -> pl.DataFrame:
    """Row numbers are 1-based data rows, as the report names them."""
    values = frame[column].cast(pl.String).to_list()
    values[row - 1] = value
    return frame.with_columns(pl.Series(column, values, dtype=pl.String))


def _nelm(*args: str) -> subprocess.CompletedProcess:
    """The command in this process (typer's runner): the same exit codes and streams, without
    a fresh interpreter's start-up for each call."""
    from typer.testing import CliRunner

    from nelm.cli import app

    res = CliRunner().invoke(app, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return subprocess.CompletedProcess(args, res.exit_code, res.stdout, res.stderr)


def _nelm_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nelm.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def bad_csv(tmp_path, small_frame):
    f = small_frame.with_columns(pl.col(c).cast(pl.String) for c in
                                 ("pathology.ki67_percent", "time_months", "event", "treatment"))
    f = _set(f, 3, "pathology.ki67_percent", "abc")
    f = _set(f, 5, "event", "2")
    f = _set(f, 7, "time_months", "-4")
    f = _set(f, 9, "treatment", "magic beans")
    f = _set(f, 11, "time_months", None)            # missing: excluded with its reason, not refused
    return _csv(tmp_path, f)


def test_bad_rows_are_named_with_row_and_field(bad_csv):
    report = analyse(bad_csv, figures=False).report
    named = {(p["row"], p["field"]) for p in report["problems"]}
    assert {(3, "pathology.ki67_percent"), (5, "event"), (7, "time_months"), (9, "treatment")} <= named
    treatment = next(p for p in report["problems"] if p["field"] == "treatment")
    assert "magic beans" in treatment["message"] and "liver_resection" in treatment["message"]
    flow = report["flow"]
    assert flow["rows_read"] == 120 and flow["rows_invalid"] == 4 and flow["rows_valid"] == 116
    (missing,) = flow["excluded"]
    assert missing["n"] == 1 and missing["rows"] == [11] and "not recorded" in missing["reason"]
    assert flow["analysed"] == 115
    assert sum(g["n"] for g in report["kaplan_meier"]["groups"]) == 115


def test_dates_give_the_follow_up_and_a_backwards_date_is_refused(tmp_path, small_frame):
    f = small_frame.drop("time_months", "progression_months", "progression_event").with_columns(
        pl.lit("2020-01-01").alias("start_date"),
        pl.Series("last_date", ["2021-01-01"] * small_frame.height))
    f = _set(f, 2, "last_date", "2019-06-30")
    f = _set(f, 4, "start_date", "1st of May")
    report = analyse(_csv(tmp_path, f), figures=False).report
    named = {(p["row"], p["field"]) for p in report["problems"]}
    assert named == {(2, "last_date"), (4, "start_date")}
    groups = report["kaplan_meier"]["groups"]
    assert all(g["follow_up_max_months"] == pytest.approx(366 / (365.25 / 12)) for g in groups)


def test_treatment_labels_are_accepted(tmp_path, small_frame):
    f = small_frame.with_columns(pl.col("treatment").replace({"liver_resection": "Liver Resection"}))
    report = analyse(_csv(tmp_path, f), figures=False).report
    assert not report["problems"]
    assert "liver resection" in {g["group"] for g in report["kaplan_meier"]["groups"]}


def test_small_groups_are_warned_and_still_shown(tmp_path, small_frame):
    report = analyse(_csv(tmp_path, small_frame), figures=False).report
    groups = {g["group"]: g for g in report["kaplan_meier"]["groups"]}
    small = [name for name, g in groups.items() if g["events"] < 10]
    assert small, groups
    warned = " ".join(w["message"] for w in report["warnings"] if w["kind"] == "small_group")
    for name in small:
        assert name in warned
        assert name in report["table1"]["groups"]


def test_unknown_covariate_values_leave_the_model_and_are_counted(tmp_path, small_frame):
    f = small_frame.with_columns(pl.when(pl.int_range(pl.len()) < 10).then(None)
                                 .otherwise(pl.col("liver.timing")).alias("liver.timing"))
    report = analyse(_csv(tmp_path, f), covariates="liver.timing", figures=False).report
    assert report["cox"]["left_out_unknown_covariate"] == 10
    assert any(w["kind"] == "complete_case" for w in report["warnings"])
    timing = [r for r in report["table1"]["rows"] if r["variable"] == "Timing of liver metastases"]
    unknown = next(r for r in timing if r["kind"] == "unknown")
    assert sum(int(v) for v in unknown["values"].values()) == 10


def test_json_shape(design_result):
    report = design_result.report
    text = json.dumps(report, allow_nan=False)        # no NaN or infinity reaches a pipeline
    assert json.loads(text)["schema"] == 1
    assert set(report) >= {"title", "versions", "recipe", "flow", "problems", "warnings", "endpoint", "group",
                           "table1", "kaplan_meier", "cox", "literature", "propensity"}
    assert set(report["versions"]["libraries"]) >= {"lifelines", "statsmodels", "polars"}
    assert report["versions"]["knowledge_base"]["sha256"]
    km = report["kaplan_meier"]["groups"][0]
    assert set(km) >= {"group", "n", "events", "median_months", "median_ci", "rates"}
    assert [r["years"] for r in km["rates"]] == [1, 3, 5, 10]
    assert report["kaplan_meier"]["logrank"]["test"] == "log-rank"
    term = report["cox"]["terms"][0]
    assert set(term) >= {"label", "hr", "ci_low", "ci_high", "p"}
    assert {"term", "p", "violated"} <= set(report["cox"]["ph_test"][0])
    assert {"smd_before", "smd_after"} <= set(report["propensity"]["balance"][0])
    assert report["recipe"]["command"].startswith("nelm cohort registry.parquet --design mayo2011")
    lit = report["literature"]["Surgery"]
    assert any(c["cohort"] == "mayo2010_resection" for c in lit)
    assert all("curve" not in a for c in lit for a in c["arms"])


def test_html_report_has_the_tables_and_figures(tmp_path, small_csv):
    out = tmp_path / "report.html"
    proc = _nelm("cohort", str(small_csv), "--design", "mayo2011", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    for needle in ('<table class="flow">', '<table class="table1">', '<table class="km">', '<table class="cox">',
                   '<table class="balance">', "Recipe", "Versions", "lifelines", "data:image/svg+xml;base64,",
                   "Propensity-matched comparison", "Beside the published cohorts"):
        assert needle in html, needle
    assert "<script" not in html


def test_cli_exit_codes(tmp_path, small_csv, bad_csv):
    ok = _nelm("cohort", str(small_csv), "--format", "json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["flow"]["rows_read"] == 120
    bad = _nelm_process("cohort", str(bad_csv))       # one real process: the exit code as a shell sees it
    assert bad.returncode == 2
    assert "row 3: pathology.ki67_percent" in bad.stderr and "row 9: treatment" in bad.stderr
    assert "Kaplan–Meier" in bad.stdout                      # the valid rows are still analysed
    for args, message in ((["--covariates", "nope"], "'nope' is not a column"),
                          (["--design", "mayo2099"], "not a known design"),
                          (["--endpoint", "dfs"], "allowed: os, pfs"),
                          (["--design", "mayo2011", "--group", "ecog"], "cannot be combined with --design"),
                          (["--group", "nope"], "--group 'nope' is not a column"),
                          (["--out", str(tmp_path / "r.pdf")], "the report is .html or .json")):
        proc = _nelm("cohort", str(small_csv), *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr
    no_outcome = tmp_path / "no_outcome.csv"
    no_outcome.write_text("id,liver.timing\na,synchronous\n")
    proc = _nelm("cohort", str(no_outcome))
    assert proc.returncode == 2 and "no column time_months (or start_date and last_date), event" in proc.stderr
    missing = _nelm("cohort", str(tmp_path / "absent.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_synth_registry_cli_writes_the_outcome_columns(tmp_path):
    out = tmp_path / "reg.csv"
    proc = _nelm("synth", "--n", "50", "--seed", "4", "--registry", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    frame = pl.read_csv(out)
    assert {"treatment", "time_months", "event", "progression_months", "progression_event"} <= set(frame.columns)
    assert frame["event"].is_in([0, 1]).all() and (frame["time_months"] >= 0).all()
    assert (frame["progression_months"].drop_nulls() <= frame.filter(pl.col("progression_months").is_not_null())
            ["time_months"]).all()


def test_derived_columns_are_the_screening_columns(tmp_path, small_frame):
    """Grade, category, Frilling type, criteria, verdicts and the plan's leading option come
    from the screening pipeline itself: equal, row by row, to what nelm screen writes."""
    from nelm.cohort.registry import read_registry
    from nelm.knowledge import load
    from nelm.screen.run import screen

    kb = load()
    reg = read_registry(_csv(tmp_path, small_frame), kb, plan=True)
    patients = _csv(tmp_path, small_frame.drop("treatment", "time_months", "event", "progression_months",
                                               "progression_event"), "patients.csv")
    out = tmp_path / "screened.parquet"
    result = screen(patients, out)
    assert not result.problems
    screened = pl.read_parquet(out)
    columns = [c for c in screened.columns if c != "id"]
    assert "plan.leading" in columns and any(c.startswith("options.") for c in columns)
    mine = reg.frame.select("id", *columns).sort("id")
    assert mine.equals(screened.select("id", *columns).sort("id"))


def test_plan_and_classification_columns_work_as_groups_and_covariates(small_csv):
    report = analyse(small_csv, group="plan.leading", figures=False).report
    assert report["group"]["label"] == "Plan: leading option"
    assert len(report["kaplan_meier"]["groups"]) > 1
    report = analyse(small_csv, group="classification.frilling_type", covariates="derived.extrahepatic_disease",
                     figures=False).report
    assert {g["group"] for g in report["kaplan_meier"]["groups"]} <= {"I", "II", "III"}
    assert any(t["covariate"] == "derived.extrahepatic_disease" for t in report["cox"]["terms"])

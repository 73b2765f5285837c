"""Evaluate the knowledge base for patients, in three-valued (Kleene) logic.

A patient is one row of a Polars frame; every derived variable, criterion item and
rule condition is one column computed from the compiled knowledge base, so the same
definitions assess one patient or a table of a million (:func:`evaluate_frame`).

Verdicts: an option's rules are read in order and the first that holds decides. When
a condition is unknown, its verdict stays *possible* and reading goes on; the verdict
is determined only when every possible verdict is the same, which is exactly when no
completion of the unknown inputs could give another (up to Kleene's conservatism).
A ``cap`` rule that holds limits how good the verdict can be.

Two passes (contract v2, "Pre-treatment checks"): the facts as entered give the
classification, the criteria and the missing data; the option rules and verdicts are
read with every unknown pre-treatment check (knowledge/checks.yaml) in its passing
value, and an option lists each such check it relied on among its ``conditions``.

This package assesses nothing beyond the knowledge base: the treatment plan
(:mod:`nelm.plan`, which reads the decision of :mod:`.plan_program`) and the published outcomes
(:mod:`nelm.outcomes`) are built on its result by :mod:`nelm.assessment`.

One job a module, each importing only the modules listed before it:

- :mod:`.frame`: the knowledge base over a table of patients (Polars), verdicts as expressions;
- :mod:`.verdicts`: an option's verdict from its rule conditions, shared by every executor;
- :mod:`.row`: one patient, as generated Python (:mod:`nelm.rowcode`) or a one-row frame;
- :mod:`.guidelines`: the verdicts another guideline profile would give the same patient;
- :mod:`.document`: the assessment document and its prose;
- :mod:`.sqlexpr` and :mod:`.plan_program`: the plan's decision as sqlglot expressions over the
  verdict columns, one definition run for one patient (generated Python), by Polars and as SQL.

This module only re-exports the names the rest of nelm imports from ``nelm.engine``;
a test that replaces one must patch the module that owns it.
"""
from __future__ import annotations

from typing import Any

from .frame import (
    _KEYED, _PLANS, _input_schema, _lazy, _needed, _plan, _reads_assumed, _verdict_stages, evaluate_both_passes,
    evaluate_frame, first_rule, patients_frame, pl, verdict_dtype,
)
from .verdicts import _MASK_VERDICT, _bits, _cap, _rule_mask, possible_verdicts, resolve_verdict
from .row import (
    _PROGRAMS, Dtypes, Evaluation, RowProgram, _code_key, _generate, _node_python, default_executor, evaluate, row_program,
    with_facts,
)
from .guidelines import _downstream_nodes, _verdicts_under_other_guidelines, verdicts_under
from .document import (
    DISCLAIMER, LEVEL_ORDER, _affects, _conditions, _disagreements, _option, _prose, _reason, _rule_columns,
    LeanOptions, assessment_from, brief_options, plan_view, strongest_level,
)


def __getattr__(name: str) -> Any:
    if name == "SCHEMA":  # the input columns' Polars dtypes, built when first asked for
        return _input_schema()
    raise AttributeError(name)

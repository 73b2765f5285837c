"""Treatment pathways and plan assumptions as data: the schema of ``pathways.yaml``.

A pathway is a patient situation (``when``, SQL) with the steps a board follows in it;
each step lists candidate options in the order the guidelines prefer them. The plan
(:mod:`nelm.plan`) keeps the candidates today's verdicts allow. Assumptions are the
missing facts a board routinely confirms, which a conditional plan may assume.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built at first validation: a cached knowledge base never validates


class StepOption(_Record):
    id: str
    if_: str | None = Field(None, alias="if", description="SQL: this option belongs to the step only when true")


class Step(_Record):
    when: Literal["now", "after_response", "at_progression", "if_symptoms_persist"]
    options: list[str | StepOption] = Field(min_length=1, description="candidates in order of preference")
    combine: Literal["alternatives", "together"] = "alternatives"
    limit: int = Field(3, ge=1, description="at most this many options are named")
    if_: str | None = Field(None, alias="if", description="SQL: the step applies only when true")
    intent: str | None = None
    reason: str
    sources: list[str] = Field(min_length=1)


class NothingNow(_Record):
    reason: str
    sources: list[str] = Field(min_length=1)


class Pathway(_Record):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    when: str = Field(description="SQL: the patient's situation this pathway is for; the first that holds is followed")
    steps: list[Step] = Field(min_length=1)
    nothing_now: NothingNow = Field(description="the first step when no candidate of the first step fits today")
    sources: list[str] = Field(min_length=1)


class Assumption(_Record):
    """A fact missing but routinely confirmed, which a conditional plan may assume."""

    field: str
    when: str | None = Field(None, description="SQL: the patients this assumption is for (the first record of a field "
                             "whose `when` certainly holds applies; none: every patient)")
    assumed: Any
    alternative: Any = Field(description="the value that shows what the plan becomes if the assumption fails")
    also: dict[str, Any] = Field(default_factory=dict, description="facts that follow from the assumed value "
                                 "(filled in with it where the record leaves them unknown)")
    also_if_not: dict[str, Any] = Field(default_factory=dict, description="facts that follow from the alternative")
    label: str | None = Field(None, description="the assumption as a clinician states it")
    if_not_label: str | None = Field(None, description="the other outcome, as a clinician states it (a branch's `if`)")
    reason: str
    sources: list[str] = Field(min_length=1)


class PathwaysFile(_Record):
    assumptions: list[Assumption]
    pathways: list[Pathway] = Field(min_length=1)

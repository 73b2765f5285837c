"""Treatment pathways and plan assumptions as data: the schema of ``pathways.yaml``.

A pathway is a patient situation (``when``, SQL) with the steps a board follows in it;
each step lists candidate options in the order the guidelines prefer them. The plan
(:mod:`nelm.plan`) keeps the candidates today's verdicts allow. Assumptions are the
missing facts a board routinely confirms, which a conditional plan may assume.

A choice (``choices``) is a place in a step's list that names one option of several by a
rule written once: a step lists the choice's id (``embolization``), and the loader puts
the choice's options there, each under its own condition (joined with the condition the
step gives the choice, if any). Every reader of the pathways (the planner, the plan
columns, the FHIR PlanDefinition) sees only the expanded options.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..patient import OPTION_IDS


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built at first validation: a cached knowledge base never validates


class StepOption(_Record):
    id: str
    if_: str | None = Field(None, alias="if", description="SQL: this option belongs to the step only when true")


class Step(_Record):
    when: Literal["now", "after_response", "at_progression", "if_symptoms_persist"]
    options: list[str | StepOption] = Field(min_length=1, description="candidates in order of preference (a choice's "
                                            "id stands for its options, expanded in that place when the file is read)")
    combine: Literal["alternatives", "together"] = "alternatives"
    limit: int = Field(3, ge=1, description="at most this many options are named")
    joins: bool = Field(False, description="a `now` step given only together with the option of an earlier `now` step "
                        "(the analogue continued as the backbone beside the next line, telotristat with the analogue): it "
                        "joins today's step and never opens a plan alone")
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

    @model_validator(mode="after")
    def _joins_something(self) -> Pathway:
        # a step that only joins needs a `now` step before it that can open the plan
        for i, step in enumerate(self.steps):
            if step.joins and (step.when != "now" or not any(s.when == "now" and not s.joins for s in self.steps[:i])):
                raise ValueError(f"pathway {self.id} step {i + 1}: `joins` needs a `now` step of its own, after a `now` "
                                 "step that can open the plan")
        return self


class Assumption(_Record):
    """A fact missing but routinely confirmed, which a conditional plan may assume."""

    field: str
    when: str | None = Field(None, description="SQL: the patients this assumption is for (the first record of a field "
                             "whose `when` certainly holds applies; none: every patient)")
    assumed: Any
    alternative: Any = Field(description="the value that shows what the plan becomes if the assumption fails")
    also_alternatives: list[Any] = Field(default_factory=list, description="the field's other values, each tried "
                                         "for a branch of its own (a fact with more than two values)")
    also: dict[str, Any] = Field(default_factory=dict, description="facts that follow from the assumed value "
                                 "(filled in with it where the record leaves them unknown)")
    also_if_not: dict[str, Any] = Field(default_factory=dict, description="facts that follow from the alternative")
    label: str | None = Field(None, description="the assumption as a clinician states it")
    if_not_label: str | None = Field(None, description="the other outcome, as a clinician states it (a branch's `if`)")
    reason: str
    sources: list[str] = Field(min_length=1)


class Choice(_Record):
    """One option of several named in a step's place by a rule stated once (``choices``)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="the name a step lists in place of the options")
    options: list[StepOption] = Field(min_length=2, description="in the order a step lists them, each with the "
                                      "condition under which it is the one named")
    reason: str
    sources: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _well_formed(self) -> Choice:
        unconditional = [o.id for o in self.options if not o.if_]
        if unconditional:
            raise ValueError(f"choice {self.id}: option(s) {unconditional} without the condition that chooses them")
        if self.id in OPTION_IDS:
            raise ValueError(f"choice {self.id}: the name of an option, which a step could not tell from the choice")
        return self


_ONE_NAME = re.compile(r"(NOT )?[a-z][a-z0-9_]*")


def _both(first: str, second: str) -> str:
    """SQL: both conditions hold. Each is bracketed unless it is one name (or NOT one name),
    so that an OR inside either keeps its meaning."""
    return " AND ".join(c if _ONE_NAME.fullmatch(c) else f"({c})" for c in (first, second))


def _expanded(step: Step, where: str, choices: dict[str, Choice]) -> Step:
    """The step with each choice's id replaced, in its place, by the choice's options."""
    options: list[str | StepOption] = []
    named_by: dict[str, str] = {}  # an option this step names through a choice -> that choice
    for o in step.options:
        oid, cond = (o, None) if isinstance(o, str) else (o.id, o.if_)
        choice = choices.get(oid)
        if choice is None:
            options.append(o)
            continue
        for alt in choice.options:
            named_by[alt.id] = choice.id
            options.append(StepOption.model_validate({"id": alt.id, "if": _both(cond, alt.if_) if cond else alt.if_}))
    ids = [o if isinstance(o, str) else o.id for o in options]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        # an option's condition is computed under the pathway, step and option id: a second entry would silently
        # take the first one's place
        why = [f"{i!r} beside {named_by[i]!r}, which already stands for it" if i in named_by else f"{i!r} twice"
               for i in twice]
        raise ValueError(f"{where} ({step.when}) names {'; '.join(why)}")
    return step.model_copy(update={"options": options}) if named_by else step


class PathwaysFile(_Record):
    choices: list[Choice] = Field(default_factory=list, description="options a step names one of, by a rule")
    assumptions: list[Assumption]
    pathways: list[Pathway] = Field(min_length=1)

    @model_validator(mode="after")
    def _expand_choices(self) -> PathwaysFile:
        choices = {c.id: c for c in self.choices}
        if len(choices) < len(self.choices):
            raise ValueError("a choice is defined twice")
        self.pathways = [pw.model_copy(update={"steps": [_expanded(step, f"pathway {pw.id} step {i + 1}", choices)
                                                         for i, step in enumerate(pw.steps)]})
                         for pw in self.pathways]
        return self

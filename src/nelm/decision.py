"""The tumour board's decision on one assessed version of a case.

The program proposes; the board decides. A decision records what the board chose (the
options in the order they are to be given), why, who attended, when, and who signed. It is
compared with the plan and the verdicts the board was shown: a decision that departs from
them (another first treatment than the plan's, or an option the assessment judged not
recommended, contraindicated or undetermined) says so, and is refused without the
board's reason for departing, so the record always explains itself.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from . import labels
from .patient import OPTION_IDS

OptionId = Literal[OPTION_IDS]  # type: ignore[valid-type]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
CAUTION_VERDICTS = ("not_recommended", "contraindicated", "undetermined")


class BoardDecision(BaseModel):
    """What the board decided (the document the API takes and the audit log keeps)."""

    model_config = ConfigDict(extra="forbid", strict=False)

    chosen: list[OptionId] = Field(max_length=6, description=(
        "option ids in the order they are to be given; empty = no active treatment (surveillance)"))
    rationale: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)] = Field(
        description="why the board chose this")
    deviation_reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] | None = Field(
        None, description="required when the decision departs from the plan or from a verdict")
    attendees: list[Name] = Field(min_length=1, max_length=40, description="who took part (name, discipline)")
    decided_on: dt.date = Field(description="date of the board meeting")
    signed_by: Name = Field(description="who signs the decision")


class InvalidDecision(ValueError):
    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))


def departures(chosen: list[str], assessment: dict[str, Any]) -> list[str]:
    """How ``chosen`` departs from the assessment's plan and verdicts, in words (empty: it does not)."""
    from .knowledge.ruleset import OPTION_LABELS

    out: list[str] = []
    plan = assessment.get("plan") or {}
    steps = plan.get("steps") or []
    now = next((st for st in steps if st.get("when") == "now"), None)
    name = lambda o: OPTION_LABELS.get(o, o)  # noqa: E731
    if plan.get("status") in ("determined", "conditional") and now is not None:
        planned = now.get("options") or []
        if not chosen and planned:
            out.append("no active treatment, where the plan's first step is " + " or ".join(map(name, planned)))
        elif chosen and planned and chosen[0] not in planned:
            out.append(f"{name(chosen[0])} first, where the plan's first step is " + " or ".join(map(name, planned)))
        elif chosen and not planned:
            out.append(f"{name(chosen[0])} now, where the plan proposes no active treatment now")
    verdicts = {o["id"]: o.get("verdict") for o in assessment.get("options", [])}
    for o in chosen:
        if verdicts.get(o) in CAUTION_VERDICTS:
            out.append(f"{name(o)}, judged {labels.verdict_label(verdicts[o])} for this patient")
    return out


def validate_decision(data: Any, assessment: dict[str, Any]) -> tuple[BoardDecision, list[str]]:
    """The decision and its departures from the plan; InvalidDecision names every problem."""
    if not isinstance(data, dict):
        raise InvalidDecision([("", "the decision must be a JSON object")])
    try:
        decision = BoardDecision.model_validate(data)
    except ValidationError as exc:
        raise InvalidDecision([(".".join(str(p) for p in e["loc"]) or "", e["msg"])
                               for e in exc.errors(include_url=False)]) from None
    if len(set(decision.chosen)) != len(decision.chosen):
        raise InvalidDecision([("chosen", "an option is listed twice")])
    gone = departures(decision.chosen, assessment)
    if gone and not decision.deviation_reason:
        raise InvalidDecision([("deviation_reason", "the decision departs from the assessment (" + "; ".join(gone)
                                + "): give the board's reason for departing")])
    return decision, gone


def record_of(decision: BoardDecision, gone: list[str]) -> dict[str, Any]:
    """The decision as stored in the audit log (JSON), with the departures it was checked for."""
    return decision.model_dump(mode="json") | {"departures": gone}

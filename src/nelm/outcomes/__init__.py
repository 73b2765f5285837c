"""Published outcomes of comparable patients, attached to each option (issue 5: in progress)."""
from __future__ import annotations

from typing import Any


def attach_outcomes(assessment: dict[str, Any], row: dict[str, Any], kb: Any) -> None:
    for opt in assessment["options"]:
        opt.setdefault("outcomes", [])

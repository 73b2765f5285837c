"""The words people read, from one table (``labels.yaml``).

Every label the form, the web pages, the command line and the report show for a contract
field, an enumeration value, a verdict or a criterion status comes from here, so a
clinician meets the same words everywhere and no raw id ("jejunum_ileum", "not_met")
reaches a page. The contract's ids stay in the JSON. This module imports nothing of
nelm, so every layer (the patient model's messages included) may use it.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TABLE = Path(__file__).with_name("labels.yaml")


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    return yaml.safe_load(TABLE.read_text(encoding="utf-8"))


def _generic(value: Any) -> str:
    return str(value).replace("_", " ")


def _path(field: str) -> str:
    """``prior_therapies.2.outcome`` -> ``prior_therapies.outcome`` (list positions carry no words)."""
    return ".".join(p for p in field.split(".") if not p.isdigit())


def field_label(field: str) -> str:
    entry = table()["fields"].get(_path(field))
    if entry:
        return entry["label"]
    return table()["groups"].get(_path(field)) or _generic(field.replace(".", ": "))


def field_question(field: str) -> str:
    """How the form asks for a field (falls back to its label)."""
    entry = table()["fields"].get(_path(field)) or {}
    return entry.get("question") or field_label(field)


def field_unit(field: str) -> str:
    return (table()["fields"].get(_path(field)) or {}).get("unit", "")


def field_section(field: str) -> str:
    return (table()["fields"].get(_path(field)) or {}).get("section", "")


def fields() -> dict[str, dict[str, Any]]:
    return table()["fields"]


def value_label(field: str | None, value: Any) -> str:
    """An enumeration value of a contract field as a clinician writes it (no unit)."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    values = table()["values"].get(_path(field or ""), {})
    return values.get(value, _generic(value)) if isinstance(value, str) else str(value)


def word(kind: str, value: Any) -> str:
    """One of the assessment's own words: kind is verdicts, statuses, plan_status, when, intents."""
    if value is None:
        return "unknown"
    return table()[kind].get(value, _generic(value))


def guideline_label(value: Any) -> str:
    """A guideline profile or variant source by a name a board reads ("Review 002's thresholds")."""
    return word("guidelines", value)


def verdict_label(value: Any) -> str:
    return word("verdicts", value)


def status_label(value: Any) -> str:
    return word("statuses", value)


def classification_label(key: str) -> str:
    return table()["classification"].get(key, _generic(key))


def classification_value(key: str, value: Any) -> str:
    if value is None:
        return "unknown"
    return table()["classification_values"].get(key, {}).get(value, _generic(value))


def plain(value: Any) -> str:
    """A value as typed into a form or quoted in a message: yes/no, 2.0 as 2, text as it is."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

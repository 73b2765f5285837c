"""The printable tumour-board report (issue 5: in progress)."""
from __future__ import annotations

from typing import Any


def build_html(patient: Any, assessment: dict[str, Any]) -> str:
    raise NotImplementedError("report not built yet")


def build_pdf(patient: Any, assessment: dict[str, Any]) -> bytes:
    raise NotImplementedError("report not built yet")

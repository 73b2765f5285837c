"""What was read from a FHIR Bundle, for a person (``nelm assess --fhir``)."""
from __future__ import annotations

from rich.console import Console

from .reader import FhirImport


def render_import(imported: FhirImport, console: Console) -> None:
    m = imported.mapping
    console.print(f"\nRead from FHIR (mapping table {m['version']}, sha256 {m['sha256'][:12]}…)", style="bold",
                  markup=False)
    for r in imported.provenance:
        console.print(f"  {r}", markup=False)
    if imported.conflicts:
        console.print("Conflicting records (the most recent governs; a tie stays unknown):", style="bold", markup=False)
        for c in imported.conflicts:
            console.print(f"  {c}", markup=False)
    for note in imported.notes:
        console.print(f"  Note: {note}", markup=False)
    if imported.unread:
        console.print(f"Not read ({len(imported.unread)}):", style="bold", markup=False)
        for u in imported.unread:
            console.print(f"  {u}", markup=False)

"""Selecting and printing evidence records (`nelm evidence`)."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .evidence import EvidenceRecord, evidence_index


def select(option: str | None = None, search: str | None = None) -> list[EvidenceRecord]:
    records = list(evidence_index().values())
    if option:
        records = [r for r in records if option in r.topics]
    if search:
        needle = search.lower()
        records = [r for r in records if needle in r.model_dump_json().lower()]
    return sorted(records, key=lambda r: (r.year, r.id))


def _outcome(o) -> str:
    # a bound stays a bound ('<1'), a range a range ('15-20')
    val = "not reached" if o.not_reached else (f"{o.bound or ''}{o.value:g}"
                                               + (f"-{o.value_high:g}" if o.value_high is not None else ""))
    unit = {"percent": " %", "months": " mo", "years": " y", "ratio": "", "gy": " Gy", "gbq": " GBq"}.get(o.unit, f" {o.unit}")
    tp = f" at {o.time_point_months:g} mo" if o.time_point_months is not None else ""
    ci = f" (95% CI {o.ci_low:g}–{o.ci_high:g})" if o.ci_low is not None and o.ci_high is not None else ""
    p = f", p={o.p_value}" if o.p_value else ""
    return f"{o.endpoint.replace('_', ' ')} {o.arm}: {val}{unit}{tp}{ci}{p}"


VERIFICATION_LABELS = {
    "source": "source-checked",
    "review": "review only",
    "unverified": "UNVERIFIED",
}
VERIFICATION_CAPTION = ("source-checked: against the publication or its abstract · review only: as a source "
                        "review reports it · UNVERIFIED: neither; check before relying on it")


def verification_text(r: EvidenceRecord) -> str:
    """Plain-text verification state and identifiers, e.g. for a terminal without links."""
    parts = [VERIFICATION_LABELS[r.verified]]
    if r.doi:
        parts.append(f"doi:{r.doi} ({r.doi_url})")
    if r.pmid:
        parts.append(f"PMID {r.pmid} ({r.pubmed_url})")
    return "\n".join(parts)


def _verification_cell(r: EvidenceRecord) -> str:
    label = VERIFICATION_LABELS[r.verified]
    lines = [f"[bold red]{label}[/bold red]" if r.verified == "unverified" else label]
    if r.doi:
        lines.append(f"[link={r.doi_url}]doi:{escape(r.doi)}[/link]")
    if r.pmid:
        lines.append(f"[link={r.pubmed_url}]PMID {r.pmid}[/link]")
    return "\n".join(lines)


def render_table(records: list[EvidenceRecord], console: Console) -> None:
    table = Table(title=f"Evidence records ({len(records)})", caption=VERIFICATION_CAPTION,
                  show_lines=True, expand=True)
    table.add_column("id", no_wrap=True)
    table.add_column("study", ratio=4)
    table.add_column("level · design · n", ratio=2)
    table.add_column("verified · identifiers", ratio=2, overflow="fold")
    table.add_column("outcomes", ratio=6)
    for r in records:
        newer = " (newer than the reviews)" if r.newer_than_sources else ""
        study = escape(f"{r.citation.authors} {r.citation.title}. {r.citation.journal} {r.year}{newer}")
        design = f"level {r.level} · {r.design.replace('_', ' ')} · n={r.n if r.n is not None else '—'}"
        table.add_row(r.id, study, design, _verification_cell(r),
                      escape("\n".join(_outcome(o) for o in r.outcomes)) or "—")
    console.print(table)

"""Selecting and printing evidence records (`nelm evidence`)."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .evidence import EvidenceRecord, citation_label, evidence_index, public_text, verification_state


SORTS = ("year", "level", "modality")
_LEVELS = ("1a", "1b", "2a", "2b", "3", "4", "5")
# the endpoints a board looks at first, in that order, for a record's key result
_KEY_ENDPOINTS = ("hazard_ratio", "pfs_median", "os_median", "ttp_median", "os_rate", "pfs_rate",
                  "objective_response", "symptom_control", "perioperative_mortality")


def _modality_rank(r: EvidenceRecord) -> int:
    from .knowledge.ruleset import MODALITY_LABELS, OPTION_ORDER
    from .knowledge import load

    modality = {o.id: o.modality for o in load().options}
    order = list(MODALITY_LABELS)
    ranks = [order.index(modality[t]) for t in r.topics if t in modality]
    return min(ranks) if ranks else len(order) + (0 if r.topics and r.topics[0] in OPTION_ORDER else 1)


def select(option: str | None = None, search: str | None = None, sort: str = "year") -> list[EvidenceRecord]:
    """Records for an option or a text, newest first by default; ``sort`` year, level or modality."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; allowed: {', '.join(SORTS)}")
    records = list(evidence_index().values())
    if option:
        records = [r for r in records if option in r.topics]
    if search:
        needle = search.lower()
        records = [r for r in records if needle in r.model_dump_json().lower()]
    newest = sorted(records, key=lambda r: (-r.year, r.id))
    if sort == "level":
        return sorted(newest, key=lambda r: _LEVELS.index(r.level))  # stable: newest first within a level
    if sort == "modality":
        return sorted(newest, key=_modality_rank)
    return newest


def key_result(r: EvidenceRecord) -> str | None:
    """The one result a list shows for a record (as the source states it, bounds and ranges kept)."""
    for endpoint in _KEY_ENDPOINTS:
        for o in r.outcomes:
            if o.endpoint == endpoint:
                return _outcome(o)
    return _outcome(r.outcomes[0]) if r.outcomes else None


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
                        "review reports it · UNVERIFIED: neither; check before relying on it · source not "
                        "identified: the publication behind the record is not established")


def _verification_label(r: EvidenceRecord) -> str:
    badge = verification_state(r)[0]
    return badge if badge == "source not identified" else VERIFICATION_LABELS[r.verified]


def verification_text(r: EvidenceRecord) -> str:
    """Plain-text verification state and identifiers, e.g. for a terminal without links."""
    parts = [_verification_label(r)]
    if r.doi:
        parts.append(f"doi:{r.doi} ({r.doi_url})")
    if r.pmid:
        parts.append(f"PMID {r.pmid} ({r.pubmed_url})")
    return "\n".join(parts)


def _verification_cell(r: EvidenceRecord) -> str:
    label = _verification_label(r)
    lines = [f"[bold red]{label}[/bold red]" if r.verified == "unverified" or label == "source not identified"
             else label]
    if r.doi:
        lines.append(f"[link={r.doi_url}]doi:{escape(r.doi)}[/link]")
    if r.pmid:
        lines.append(f"[link={r.pubmed_url}]PMID {r.pmid}[/link]")
    return "\n".join(lines)


# below this width a table's five columns break words; each record is printed as a short block
NARROW = 110


def render_table(records: list[EvidenceRecord], console: Console) -> None:
    """The records at the terminal's width: a table where it fits, one block per record where not.
    Records are named by author and year (their ids are in the JSON output)."""
    if console.width < NARROW:
        _render_blocks(records, console)
        return
    table = Table(title=f"Evidence records ({len(records)})", caption=VERIFICATION_CAPTION,
                  show_lines=True, expand=True)
    # each header is one word, and no column is narrower than its header: none breaks mid-word
    table.add_column("record", width=16, overflow="fold")
    table.add_column("study", min_width=12, ratio=4)
    table.add_column("level", width=16)
    table.add_column("verified", width=26, overflow="fold")  # a DOI on one line
    table.add_column("results", min_width=12, ratio=6)
    for r in records:
        newer = " (newer than the reviews)" if r.newer_than_sources else ""
        study = escape(f"{r.citation.authors} {r.citation.title}. {r.citation.journal} {r.year}{newer}")
        design = f"level {r.level} · {r.design.replace('_', ' ')} · n={r.n if r.n is not None else '—'}"
        key = key_result(r)
        rest = [_outcome(o) for o in r.outcomes if _outcome(o) != key]
        outcomes = (f"[bold]{escape(public_text(key))}[/bold]" + "".join("\n" + escape(public_text(x)) for x in rest)) \
            if key else "—"
        # the id under the name: the key of the JSON output and of the evidence page's address
        table.add_row(f"{escape(citation_label(r.id))}\n[dim]{r.id}[/dim]", study, design, _verification_cell(r), outcomes)
    console.print(table)


def _render_blocks(records: list[EvidenceRecord], console: Console) -> None:
    console.print(f"[bold]Evidence records ({len(records)})[/bold]")
    for r in records:
        newer = " · newer than the reviews" if r.newer_than_sources else ""
        console.print(f"\n[bold]{escape(citation_label(r.id))}[/bold] [dim]{r.id}[/dim] · level {r.level} · "
                      f"{r.design.replace('_', ' ')} · n={r.n if r.n is not None else '—'}{newer}")
        console.print(escape(f"{r.citation.authors} {r.citation.title}. {r.citation.journal} {r.year}"))
        console.print(_verification_cell(r).replace("\n", " · "))
        key = key_result(r)
        if key:
            console.print(escape(public_text(key)))
    console.print(f"\n[dim]{VERIFICATION_CAPTION}[/dim]")

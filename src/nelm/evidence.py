"""Evidence records: every published result the engine cites, as validated data.

Records live in ``knowledge/evidence/*.yaml`` (one file per modality). Each file is
``{"records": [...]}``; each record is validated by :class:`EvidenceRecord` when the
knowledge base is loaded, so a typo in a data file fails loudly at start-up, not
silently in a verdict.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from .yamlio import read_yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .patient import OPTION_IDS

EVIDENCE_DIR = Path(__file__).parent / "knowledge" / "evidence"

Design = Literal[
    "randomized_phase3",
    "randomized_phase2",
    "phase2",
    "prospective_cohort",
    "prospective_registry",
    "retrospective_multicentre",
    "retrospective_single_centre",
    "registry_analysis",
    "propensity_matched",
    "systematic_review",
    "meta_analysis",
    "narrative_review",
    "guideline",
    "consensus_criteria",
    "preclinical",
    "pathology_study",
]

Endpoint = Literal[
    "os_median",            # overall survival, median (months)
    "os_rate",              # overall survival at time_point_months (percent)
    "dss_rate",             # disease-specific survival rate
    "dfs_rate",             # disease-/recurrence-free survival rate
    "pfs_median",
    "pfs_rate",
    "ttp_median",           # time to progression
    "objective_response",   # CR + PR, percent
    "complete_response",
    "partial_response",
    "stable_disease",
    "progressive_disease",
    "disease_control",      # CR + PR + SD
    "symptom_control",      # relief of hormonal / bulk symptoms, percent
    "symptom_recurrence",
    "perioperative_mortality",
    "morbidity",
    "recurrence",
    "local_recurrence",
    "r0_resection",
    "hazard_ratio",
    "duration_of_response",
    "toxicity_grade3plus",
    "other",
]

Unit = Literal["percent", "months", "years", "ratio", "count", "gy", "gbq", "fold"]

Level = Literal["1a", "1b", "2a", "2b", "3", "4", "5"]
"""Oxford CEBM 2009 levels: 1b = individual RCT, 2b = cohort / low-quality RCT,
3 = case-control, 4 = case series / poor cohort, 5 = expert opinion. Guidelines
take the level of their strongest supporting evidence or 5 when consensus-based."""

TOPICS = OPTION_IDS + ("classification", "prognosis", "epidemiology", "imaging", "intra_arterial")


class Citation(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built at first validation: a cached knowledge base never validates
    authors: str = Field(description="as in the reference list, e.g. 'Mayo SC, de Jong MC, Pulitano C, et al.'")
    title: str
    journal: str
    year: int = Field(ge=1950, le=2030)
    reference: str | None = Field(None, description="volume:pages, or congress and abstract number")


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built at first validation: a cached knowledge base never validates
    endpoint: Endpoint
    arm: str = Field(description="which group, e.g. 'octreotide LAR', 'placebo', 'all patients', 'surgery, >25% burden, symptomatic'")
    value: float | None = Field(None, description="None only when the source reports 'not reached'")
    unit: Unit
    ci_low: float | None = None
    ci_high: float | None = None
    time_point_months: float | None = Field(None, ge=0, description="for rates: 60 = 5 years")
    p_value: str | None = Field(None, description="as reported, e.g. '<0.001', '0.000072'")
    not_reached: bool = False
    bound: Literal["<", ">", "<=", ">="] | None = Field(
        None, description="the source gives only a bound ('<1 %', '>60 %'): value is that bound, never a point estimate")
    value_high: float | None = Field(None, description="upper end when the source gives a range (value is the lower end)")
    note: str | None = None

    def shown(self) -> str:
        """The result as the source states it: a bound as a bound, a range as a range."""
        unit = {"percent": " %", "months": " months", "years": " years"}.get(self.unit, "")
        if self.value is None:
            return "not reached"
        v = f"{self.value:g}"
        if self.value_high is not None:
            return f"{v}-{self.value_high:g}{unit}"
        return f"{self.bound or ''}{v}{unit}"

    @model_validator(mode="after")
    def _check(self) -> "Outcome":
        if self.value is None and not self.not_reached:
            raise ValueError("value is required unless not_reached is true")
        if self.unit == "percent":
            for v in (self.value, self.ci_low, self.ci_high):
                if v is not None and not 0 <= v <= 100:
                    raise ValueError(f"percentage {v} outside 0-100")
        if self.ci_low is not None and self.ci_high is not None and self.ci_low > self.ci_high:
            raise ValueError("ci_low > ci_high")
        if self.value_high is not None and (self.value is None or self.value_high < self.value or self.bound):
            raise ValueError("value_high needs a lower value, is not below it, and excludes a bound")
        if self.endpoint.endswith("_rate") and self.time_point_months is None:
            raise ValueError(f"{self.endpoint} needs time_point_months")
        return self


class ReportedIn(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built at first validation: a cached knowledge base never validates
    source: Literal["review_000", "review_002", "newer", "outside"] = Field(
        description="review_000 = Mayo et al. J Am Coll Surg 2012 (shared/sources/000_*); "
        "review_002 = review of liver metastases from GEP-NETs (shared/sources/002_*); "
        "newer = published after both reviews; "
        "outside = cited by neither review although not newer than both (curator-added from a retrieved source)")
    section: str = Field(description="section, table or figure of the review, e.g. 'Table 2', 'Intra-arterial therapy'")


class CriterionItem(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built at first validation: a cached knowledge base never validates
    id: str
    text: str


Verification = Literal["source", "review", "unverified"]
"""How far a record's numbers and citation were checked:
source = against the publication itself or its abstract (a retrieved page, named in the record);
review = only as review_000 / review_002 report them;
unverified = neither (shown as such wherever the record is shown)."""

DOI_PATTERN = r"^10\.\d{4,9}/\S+$"
PMID_PATTERN = r"^[1-9]\d{0,8}$"


class EvidenceRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built at first validation: a cached knowledge base never validates
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    citation: Citation
    verified: Verification = Field(description="source / review / unverified; see Verification")
    identity: Literal["established", "unknown"] = Field(
        "established", description="whether the publication behind the record is identified (authors, title, journal); "
                                   "a source of unknown identity is shown as such and is never 'source'-checked")
    doi: str | None = Field(None, pattern=DOI_PATTERN,
                            description="only when a retrieved page showed it for this publication")
    pmid: str | None = Field(None, pattern=PMID_PATTERN, description="PubMed id, digits only; same rule as doi")
    year: int = Field(ge=1950, le=2030)
    design: Design
    level: Level
    n: int | None = Field(None, ge=0)
    population: str
    intervention: str
    comparator: str | None = None
    outcomes: list[Outcome] = Field(default_factory=list)
    reported_in: list[ReportedIn] = Field(min_length=1)
    topics: list[str] = Field(min_length=1, description="option ids or background topics this record informs")
    newer_than_sources: bool = False
    criteria: list[CriterionItem] | None = Field(None, description="for guideline / criteria-set records")
    summary: str | None = Field(None, description="one or two sentences in our own words")

    @property
    def doi_url(self) -> str | None:
        return f"https://doi.org/{self.doi}" if self.doi else None

    @property
    def pubmed_url(self) -> str | None:
        return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/" if self.pmid else None

    @field_validator("topics")
    @classmethod
    def _topics(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if t not in TOPICS]
        if bad:
            raise ValueError(f"unknown topics {bad}; allowed: {', '.join(TOPICS)}")
        return v

    @model_validator(mode="after")
    def _identity(self) -> "EvidenceRecord":
        if self.identity == "unknown" and (self.verified == "source" or self.doi or self.pmid):
            raise ValueError("a source of unknown identity cannot be source-checked nor carry a DOI or PMID")
        return self

    @model_validator(mode="after")
    def _newer(self) -> "EvidenceRecord":
        newer = any(r.source == "newer" for r in self.reported_in)
        if newer != self.newer_than_sources:
            raise ValueError("newer_than_sources must be true exactly when reported_in has source 'newer'")
        return self


class EvidenceFile(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built at first validation: a cached knowledge base never validates
    records: list[EvidenceRecord]


def load_records(directory: Path = EVIDENCE_DIR) -> list[EvidenceRecord]:
    """Load and validate every evidence file; ids must be unique across files."""
    records: list[EvidenceRecord] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        data = read_yaml(path) or {"records": []}
        try:
            parsed = EvidenceFile.model_validate(data)
        except Exception as exc:  # re-raised with the file name: a data bug, not a user error
            raise ValueError(f"{path.name}: {exc}") from exc
        for rec in parsed.records:
            if rec.id in seen:
                raise ValueError(f"evidence id {rec.id!r} in {path.name} already defined in {seen[rec.id]}")
            seen[rec.id] = path.name
            records.append(rec)
    return records


@lru_cache(maxsize=1)
def evidence_index() -> dict[str, EvidenceRecord]:
    return {r.id: r for r in load_records()}


# ---------------------------------------------------------------------------- display helpers
# How people read a citation: author–year ("Mayo 2011; Strosberg 2017"), derived from the
# record's citation. Ids stay in the JSON; a record whose source is not identified says so.

_UNIDENTIFIED = ("not identified", "source review 002", "bibliographic details not established")
_AUTHORS_UNKNOWN = ("authors not shown", "author list not shown")


def identity_established(rec: EvidenceRecord) -> bool:
    """Whether the publication behind a record is identified (authors or title page known).
    Review 002's copy lacks its title page, so it and the records resting only on it are not."""
    authors = rec.citation.authors.lower()
    return not any(authors.startswith(u) or u in authors for u in _UNIDENTIFIED)


def _first_author(authors: str) -> str:
    first = authors.split(",")[0].split("(")[0].split(";")[0].strip()
    tokens = first.split()
    if len(tokens) >= 2 and tokens[-1].isalpha() and tokens[-1].isupper() and len(tokens[-1]) <= 3:
        return " ".join(tokens[:-1])  # "Mayo SC" -> "Mayo"
    if any(t in ("investigators", "curators", "group") for t in tokens) or len(tokens) <= 1:
        return first
    if tokens[0].isupper():
        return tokens[0]  # "WHO Classification of Tumours Editorial Board" -> "WHO"
    caps = [t[0] for t in tokens if t[:1].isupper()]
    return "".join(caps) if len(caps) >= 2 else first  # "National Comprehensive Cancer Network" -> "NCCN"


def _base_label(rec: EvidenceRecord) -> str:
    if not identity_established(rec):
        return "Review 002 (unidentified source)" if "review 002" in rec.citation.authors.lower() \
            else "Unidentified source cited in review 002"
    authors = rec.citation.authors
    if authors.lower().startswith(_AUTHORS_UNKNOWN):
        return f"{rec.citation.journal.split('(')[0].strip()} {rec.citation.year}"
    return f"{_first_author(authors)} {rec.citation.year}"


@lru_cache(maxsize=1)
def citation_labels() -> dict[str, str]:
    """Record id -> author–year label; two records of one first author and year get a, b, ..."""
    index = evidence_index()
    base = {rid: _base_label(rec) for rid, rec in index.items()}
    groups: dict[str, list[str]] = {}
    for rid in sorted(base):
        if identity_established(index[rid]):
            groups.setdefault(base[rid], []).append(rid)
    out = dict(base)
    for label, ids in groups.items():
        if len(ids) > 1:
            ids.sort(key=lambda i: (index[i].citation.title, i))
            for k, rid in enumerate(ids):
                out[rid] = f"{label}{'abcdefghijklmnopqrstuvwxyz'[k]}"
    return out


def citation_label(source_id: str) -> str:
    """The author–year a person reads for a cited record id (the id itself if no record has it)."""
    return citation_labels().get(source_id, source_id)


def cite(source_ids: list[str] | tuple[str, ...]) -> str:
    """A reason's sources as a person reads them: "Mayo 2010; Glazer 2010" (no repeats)."""
    return "; ".join(dict.fromkeys(citation_label(s) for s in source_ids))


def verification_state(rec: EvidenceRecord) -> tuple[str, str, str]:
    """(badge, css class, explanation) a person reads for a record's verification. A record
    whose publication is not identified never carries the checked badge, whatever was checked."""
    if not identity_established(rec):
        return ("source not identified", "status-not_met",
                "the publication is not identified (our copy lacks its title page or the review cites it only "
                "collectively); the numbers were checked only against the text that reports them")
    return {"source": ("source", "status-met", "checked against the publication or its abstract"),
            "review": ("review", "status-unknown", "only as a source review reports it"),
            }.get(rec.verified, ("unverified", "status-not_met",
                                 "not checked against the publication, its abstract or a source review"))


import re as _re

# a parenthesised aside naming a file of the repository or where a copy is kept ("(shared/sources/002_*)",
# "(GitHub owner/repo, data/x/README.md)"): curators' notes, not for the page or the report
_REPO_ASIDE = _re.compile(r"\s*\((?:[^()]*?)(?:shared/|sources/0|GitHub |\.md\b|\.ya?ml\b|\.py\b|_\*)(?:[^()]*)\)")


def public_text(text: str | None) -> str:
    """A record's text as shown to people: without repository paths."""
    return _REPO_ASIDE.sub("", text or "")

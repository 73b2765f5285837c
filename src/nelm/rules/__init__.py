"""Option rules as data: one YAML file per modality in this folder.

Each option is an ordered list of rules. A rule has a condition (``when``, a Polars
SQL expression over the patient's columns and derived variables), and either a
``verdict`` (the first rule that holds decides) or ``note: true`` (it only adds a
reason). ``otherwise`` says what happens when no deciding rule holds. Rules shared by
several options are written once under ``groups`` and pulled in with ``use: NAME``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from ..yamlio import read_yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

RULES_DIR = Path(__file__).parent

Verdict = Literal["preferred", "reasonable", "not_recommended", "contraindicated"]
Intent = Literal["curative", "cytoreductive", "disease_control", "symptom_control", "palliative"]
Modality = Literal["surgery", "transplantation", "intra_arterial", "radionuclide", "radiotherapy",
                   "systemic", "chemotherapy", "trial"]

VERDICTS: tuple[str, ...] = ("preferred", "reasonable", "not_recommended", "contraindicated")
MODALITY_LABELS = {
    "surgery": "Surgery and ablation", "transplantation": "Transplantation",
    "intra_arterial": "Intra-arterial therapy", "radionuclide": "Radionuclide therapy",
    "radiotherapy": "External radiotherapy", "systemic": "Systemic biotherapy and targeted agents",
    "chemotherapy": "Chemotherapy", "trial": "Clinical trial",
}


# the order of ../shared/CONTRACT.md; options print in it within each modality
OPTION_ORDER = ("liver_resection", "thermal_ablation", "liver_transplant", "tae", "tace", "deb_tace",
                "sirt", "prrt", "ebrt", "ssa", "everolimus", "sunitinib", "cabozantinib", "interferon_alpha",
                "platinum_etoposide", "capecitabine_temozolomide", "streptozocin_based", "clinical_trial")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rule(_Record):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    when: str = Field(description="Polars SQL condition; null (unknown) keeps the rule's verdict possible")
    verdict: Verdict | None = None
    note: bool = False
    intent: Intent | None = None
    reason: str = Field(description="template quoting the patient's values: {column} placeholders")
    sources: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _verdict_or_note(self) -> "Rule":
        if self.note == (self.verdict is not None):
            raise ValueError(f"rule {self.id}: give either a verdict or note: true")
        return self


class Use(_Record):
    use: str


class Otherwise(_Record):
    verdict: Verdict
    reason: str
    sources: list[str] = Field(min_length=1)


class OptionDef(_Record):
    id: str
    label: str
    modality: Modality
    intent: Intent
    rules: list[Rule | Use]
    otherwise: Otherwise

    @property
    def deciding(self) -> list[Rule]:
        return [r for r in self.rules if isinstance(r, Rule) and not r.note]

    @property
    def notes(self) -> list[Rule]:
        return [r for r in self.rules if isinstance(r, Rule) and r.note]


class RulesFile(_Record):
    groups: dict[str, list[Rule]] = Field(default_factory=dict)
    options: list[OptionDef]


def rule_files(directory: Path = RULES_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def load_options(directory: Path = RULES_DIR) -> list[OptionDef]:
    """Every option of every rules file, with ``use:`` groups expanded in place."""
    options: list[OptionDef] = []
    for path in rule_files(directory):
        try:
            parsed = RulesFile.model_validate(read_yaml(path))
        except Exception as exc:
            raise ValueError(f"rules/{path.name}: {exc}") from exc
        for opt in parsed.options:
            expanded: list[Rule | Use] = []
            for r in opt.rules:
                if isinstance(r, Use):
                    if r.use not in parsed.groups:
                        raise ValueError(f"rules/{path.name}: option {opt.id} uses unknown group {r.use!r}")
                    expanded += parsed.groups[r.use]
                else:
                    expanded.append(r)
            ids = [r.id for r in expanded if isinstance(r, Rule)]
            dup = {i for i in ids if ids.count(i) > 1}
            if dup:
                raise ValueError(f"rules/{path.name}: option {opt.id} has duplicate rule ids {sorted(dup)}")
            options.append(opt.model_copy(update={"rules": expanded}))
    order = {m: i for i, m in enumerate(MODALITY_LABELS)}
    options.sort(key=lambda o: (order[o.modality], OPTION_ORDER.index(o.id) if o.id in OPTION_ORDER else 99))
    seen = [o.id for o in options]
    dup = {i for i in seen if seen.count(i) > 1}
    if dup:
        raise ValueError(f"options defined twice: {sorted(dup)}")
    return options

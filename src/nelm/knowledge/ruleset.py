"""Option rules as data: the schema of ``knowledge/rules/*.yaml`` (one file per
modality) and ``knowledge/gates.yaml`` (what rules options out, shared by many).

Each option is an ordered list of rules. A rule has a condition (``when``, a Polars
SQL expression over the patient's columns and derived variables), and either a
``verdict`` (the first rule that holds decides), a ``cap`` (when it holds the verdict
is at most that good, whichever rule decided) or ``note: true`` (it only adds a
reason). ``otherwise`` says what happens when no deciding rule holds. Rules shared by
several options of one file are written once under ``groups`` and pulled in with
``use: NAME``; gates name their options and come before the option's own rules.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from ..yamlio import read_yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

RULES_DIR = Path(__file__).parent / "rules"
GATES_FILE = Path(__file__).parent / "gates.yaml"

Verdict = Literal["preferred", "reasonable", "not_recommended", "contraindicated"]
Intent = Literal["curative", "cytoreductive", "disease_control", "symptom_control", "palliative"]
Modality = Literal["surgery", "transplantation", "intra_arterial", "radionuclide", "radiotherapy",
                   "systemic", "chemotherapy", "trial"]

VERDICTS: tuple[str, ...] = ("preferred", "reasonable", "not_recommended", "contraindicated")


def _mask_verdicts() -> dict[int, str]:
    """The verdict of each bit mask of possible verdicts (bit j: VERDICTS[j]) that has one.

    One possible verdict: that verdict. Several, all on one side (contract v3): the
    milder of them -- preferred or reasonable gives ``reasonable``, not recommended or
    contraindicated gives ``not_recommended`` -- because the board's answer is the same
    either way and the reasons say what would make it the other. Masks not listed (the
    verdict could be positive or negative) are ``undetermined``. Every executor (the
    row code, Polars, the SQL view) reads this one table.
    """
    out = {1 << j: v for j, v in enumerate(VERDICTS)}
    out[0b0011] = "reasonable"          # preferred or reasonable
    out[0b1100] = "not_recommended"     # not recommended or contraindicated
    return out


MASK_VERDICTS: dict[int, str] = _mask_verdicts()
MODALITY_LABELS = {
    "surgery": "Surgery and ablation", "transplantation": "Transplantation",
    "intra_arterial": "Intra-arterial therapy", "radionuclide": "Radionuclide therapy",
    "radiotherapy": "External radiotherapy", "systemic": "Systemic biotherapy and targeted agents",
    "chemotherapy": "Chemotherapy", "trial": "Clinical trial",
}

# short names of the options for sentences ("earlier everolimus"); the full labels live in the rules files
OPTION_LABELS = {
    "liver_resection": "liver resection", "thermal_ablation": "thermal ablation", "liver_transplant": "liver transplantation",
    "tae": "bland embolization (TAE)", "tace": "chemoembolization (TACE)", "deb_tace": "DEB-TACE", "sirt": "SIRT",
    "prrt": "PRRT", "ebrt": "external radiotherapy", "ssa": "somatostatin analogue", "telotristat": "telotristat",
    "everolimus": "everolimus", "sunitinib": "sunitinib", "cabozantinib": "cabozantinib",
    "interferon_alpha": "interferon alpha", "platinum_etoposide": "platinum-etoposide",
    "capecitabine_temozolomide": "capecitabine-temozolomide", "streptozocin_based": "streptozocin-based chemotherapy",
    "clinical_trial": "a clinical trial",
}

# the order of ../shared/CONTRACT.md; options print in it within each modality
OPTION_ORDER = ("liver_resection", "thermal_ablation", "liver_transplant", "tae", "tace", "deb_tace",
                "sirt", "prrt", "ebrt", "ssa", "telotristat", "everolimus", "sunitinib", "cabozantinib",
                "interferon_alpha", "platinum_etoposide", "capecitabine_temozolomide", "streptozocin_based",
                "clinical_trial")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built at first validation: a cached knowledge base never validates


class Rule(_Record):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    when: str = Field(description="Polars SQL condition; null (unknown) keeps the rule's verdict possible")
    verdict: Verdict | None = None
    cap: Verdict | None = Field(None, description="when the condition holds, the verdict is at most this good")
    note: bool = False
    intent: Intent | None = None
    reason: str = Field(description="template quoting the patient's values: {column} placeholders")
    sources: list[str] = Field(min_length=1)
    requirement: str | dict[str, str] | None = Field(
        None, description="what passing means, shown as the option's condition while a pre-treatment check is unknown; "
                          "a mapping names it per contract field (liver.child_pugh -> 'Child-Pugh A') when the rule reads "
                          "several checks")
    gate: bool = Field(False, description="set by the loader on rules that come from gates.yaml")
    rank: int | None = Field(None, description="set by the loader: the gate's place in gates.yaml, which lists, among the "
                                               "gates that read one check, the strictest requirement first")
    later: bool = Field(False, description="sets the option aside for now only (e.g. disease still stable): "
                                           "a plan may still sequence it for a later step")

    @model_validator(mode="after")
    def _verdict_cap_or_note(self) -> "Rule":
        if sum((self.note, self.verdict is not None, self.cap is not None)) != 1:
            raise ValueError(f"rule {self.id}: give exactly one of verdict, cap or note: true")
        return self

    def requirement_for(self, field: str) -> str | None:
        """What passing means for one check this rule reads (None: the rule says nothing of it)."""
        if isinstance(self.requirement, dict):
            return self.requirement.get(field)
        return self.requirement

    @property
    def raises_only(self) -> bool:
        """A rule with a ``requirement`` holds when the check it speaks for fails; one whose verdict is
        ``preferred`` can then only make its option more recommended, never rule it out (radioembolization
        where portal vein thrombosis rules out TAE/TACE). Its condition tells what the verdict rests on, but
        it is no check a plan that the option leads may fail on (nelm.plan.raises_only)."""
        return self.verdict == "preferred"

    @property
    def severity(self) -> int:
        """How hard the rule bites when it holds: a deciding verdict by its rank (contraindicated worst), then caps,
        then notes; gates are read in this order, so the most severe gate that holds decides and its reason leads."""
        if self.verdict is not None:
            return -len(VERDICTS) - VERDICTS.index(self.verdict)
        if self.cap is not None:
            return 0
        return 1


class Gate(Rule):
    options: list[str] = Field(min_length=1, description="the option ids this gate applies to")


class GatesFile(_Record):
    gates: list[Gate]


class Use(_Record):
    use: str


class Otherwise(_Record):
    verdict: Verdict
    reason: str
    sources: list[str] = Field(min_length=1)
    later: bool = False


class OptionDef(_Record):
    id: str
    label: str
    modality: Modality
    intent: Intent
    rules: list[Rule | Use]
    otherwise: Otherwise

    def _split(self) -> tuple[list[Rule], list[Rule], list[Rule]]:
        # read for every option of every assessment: split once per rules list
        got = _SPLIT.get(id(self))
        if got is None or got[0] is not self.rules:
            rules = [r for r in self.rules if isinstance(r, Rule)]
            got = (self.rules, ([r for r in rules if r.verdict is not None], [r for r in rules if r.cap is not None],
                                [r for r in rules if r.note]))
            _SPLIT[id(self)] = got
        return got[1]

    @property
    def deciding(self) -> list[Rule]:
        return self._split()[0]

    @property
    def caps(self) -> list[Rule]:
        return self._split()[1]

    @property
    def notes(self) -> list[Rule]:
        return self._split()[2]

    def requirement_rules(self) -> list[tuple[int | None, Rule]]:
        """(index among the deciding rules, None for a cap; rule) of the rules that say what
        passing a pre-treatment check means (a ``requirement``: only those speak for a check),
        deciding rules first, in order: what an option's conditions, the plan's columns and its
        fallback for a failed check all read."""
        got = _REQUIREMENTS.get(id(self))
        if got is None or got[0] is not self.rules:
            got = (self.rules, [(i, r) for i, r in enumerate(self.deciding) if r.requirement]
                   + [(None, r) for r in self.caps if r.requirement])
            _REQUIREMENTS[id(self)] = got
        return got[1]


_SPLIT: dict[int, tuple[list, tuple[list[Rule], list[Rule], list[Rule]]]] = {}
_REQUIREMENTS: dict[int, tuple[list, list[tuple[int | None, Rule]]]] = {}


class RulesFile(_Record):
    groups: dict[str, list[Rule]] = Field(default_factory=dict)
    options: list[OptionDef]


def rule_files(directory: Path = RULES_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def load_gates(path: Path = GATES_FILE) -> list[Gate]:
    if not path.exists():
        return []
    try:
        return GatesFile.model_validate(read_yaml(path)).gates
    except Exception as exc:
        raise ValueError(f"{path.name}: {exc}") from exc


def _for_option(gate: Gate, option_id: str, rank: int) -> Rule:
    """The gate as one option's rule: ``$option`` becomes that option's id."""
    data = gate.model_dump(exclude={"options"}) | {"gate": True, "rank": rank}
    data["when"] = data["when"].replace("$option", option_id)
    data["reason"] = data["reason"].replace("$option", option_id)
    return Rule.model_validate(data)


def load_options(directory: Path = RULES_DIR, gates_file: Path = GATES_FILE) -> list[OptionDef]:
    """Every option of every rules file, its gates first, ``use:`` groups expanded in place."""
    gates = load_gates(gates_file)
    options: list[OptionDef] = []
    for path in rule_files(directory):
        try:
            parsed = RulesFile.model_validate(read_yaml(path))
        except Exception as exc:
            raise ValueError(f"rules/{path.name}: {exc}") from exc
        for opt in parsed.options:
            # a gate is what rules the option out for this patient: read before any indication, the most severe
            # first (contraindicated, then not recommended, then caps and notes; gates.yaml's order within each), so
            # that when several hold the most severe decides and its reason leads, in all three executors alike
            mine = [_for_option(g, opt.id, i) for i, g in enumerate(gates) if opt.id in g.options]
            expanded: list[Rule | Use] = sorted(mine, key=lambda r: (r.severity, r.rank))
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
    unknown = sorted({o for g in gates for o in g.options} - set(seen))
    if unknown:
        raise ValueError(f"gates.yaml names unknown option(s) {unknown}")
    return options

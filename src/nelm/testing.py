"""Public testing helpers: patient factories, hypothesis strategies and the clinical red lines.

Like scikit-survival's testing module, this is importable by anyone extending the
knowledge base: write a rule, then check it with the same patients the project uses, and
check with :func:`red_lines` that no assessment offers what a tumour board would never offer.
"""
from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, get_args

from .patient import (OPTION_IDS, ExtrahepaticSite, Patient, PrimarySite, Syndrome,
                      validate_patient)

# A fully known, unremarkable patient: solitary resectable G1 small-bowel NET.
BASE: dict[str, Any] = {
    "age_years": 58, "ecog": 0, "fit_for_major_surgery": True,
    "primary": {"site": "jejunum_ileum", "resected": True},
    "pathology": {"differentiation": "well", "ki67_percent": 1.0, "mitoses_per_10hpf": 1},
    "functional_syndrome": "none", "symptomatic": False,
    "liver": {"timing": "metachronous", "burden_percent": 10, "lesion_count": 1, "largest_lesion_cm": 3.0,
              "lobes": "unilobar", "pattern": "single", "resectable_fraction_percent": 100,
              "portal_vein_thrombosis": False, "liver_function": "normal"},
    "extrahepatic": {"present": False, "sites": [], "resectable": None, "peritoneal_carcinomatosis": "none"},
    "right_heart_insufficiency": False, "sstr_imaging": "positive",
    "course": {"status": "stable", "stable_months": 12, "progression_within_12_months": False},
    "transplant_contraindication": False, "prior_therapies": [],
    # contract v2: a normal work-up
    "fdg_pet": "negative", "sstr_uptake_krenning": 3, "carcinoid_heart_disease": "none",
    "labs": {"egfr_ml_min": 85, "platelets_10e9_per_l": 230, "neutrophils_10e9_per_l": 3.8},
}
BASE["liver"].update({"child_pugh": "A", "bilirubin_mg_dl": 0.7, "biliary_enteric_bypass": False})
BASE["extrahepatic"]["symptomatic"] = False


def patient_dict(**changes: Any) -> dict[str, Any]:
    """BASE with changes; dotted keys reach into sections: ``patient_dict(**{"liver.burden_percent": 40})``.
    A value of ``...`` (Ellipsis) removes the field (unknown)."""
    doc = copy.deepcopy(BASE)
    for key, value in changes.items():
        node = doc
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if value is ...:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = copy.deepcopy(value)   # later dotted changes must not alter the caller's value
    if "sstr_imaging" in changes and "sstr_uptake_krenning" not in changes and doc.get("sstr_imaging") != "positive":
        doc.pop("sstr_uptake_krenning", None)  # BASE's uptake grade belongs to its positive scan
    return doc


def make_patient(**changes: Any) -> Patient:
    return validate_patient(patient_dict(**changes))


# Known values, chosen around every threshold the knowledge base uses (repeated values weight
# the draw towards the common case, so that rare combinations such as Milan candidates occur).
FIELD_VALUES: dict[str, list[Any]] = {
    "age_years": [30, 54.5, 55, 58, 62, 75],
    "ecog": [0, 0, 1, 1, 2, 3, 4],
    "fit_for_major_surgery": [True, True, False],
    "primary.site": list(get_args(PrimarySite)),
    "primary.resected": [True, False],
    "pathology.differentiation": ["well", "poor"],
    "pathology.ki67_percent": [0.5, 2.5, 3, 4.9, 5, 9, 10, 15, 20, 20.5, 35, 60, 80],
    "pathology.mitoses_per_10hpf": [0, 1, 2, 10, 20, 21, 40],
    "functional_syndrome": list(get_args(Syndrome)),
    "symptomatic": [True, False],
    "liver.timing": ["synchronous", "metachronous"],
    "liver.burden_percent": [5, 20, 25, 26, 40, 50, 60, 75, 80, 95],
    "liver.lesion_count": [1, 2, 3, 5, 8, 12, 30],
    "liver.largest_lesion_cm": [1, 2.5, 3, 4, 6, 12],
    "liver.lobes": ["unilobar", "bilobar"],
    "liver.pattern": ["single", "dominant_with_satellites", "disseminated"],
    "liver.resectable_fraction_percent": [0, 20, 50, 70, 80, 90, 95, 100],
    "liver.portal_vein_thrombosis": [True, False],
    "liver.liver_function": ["normal", "impaired"],
    "extrahepatic.resectable": [True, False],
    "right_heart_insufficiency": [False, False, True],
    "sstr_imaging": ["positive", "negative"],
    "course.status": ["stable", "progressive"],
    "course.stable_months": [0, 3, 6, 12, 24],
    "course.progression_within_12_months": [True, False],
    "transplant_contraindication": [False, False, True],
    # contract v2
    "pathology.ki67_specimen": ["primary", "liver_metastasis", "other"],
    "pathology.reported_grade": ["G1", "G2", "G3"],
    "liver.resectable": [True, False],
    "liver.child_pugh": ["A", "B", "C"],
    "liver.bilirubin_mg_dl": [0.6, 1.5, 2.5, 4.0],
    "liver.biliary_enteric_bypass": [True, False],
    "liver.lung_shunt_percent": [4, 12, 25],
    "extrahepatic.symptomatic": [True, False],
    "fdg_pet": ["positive", "negative"],
    "sstr_uptake_krenning": [0, 1, 2, 3, 4],
    "carcinoid_heart_disease": ["none", "none", "present", "valves_replaced"],
    "functional_control": ["untreated", "controlled", "refractory"],
    "labs.egfr_ml_min": [20, 40, 60, 90],
    "labs.platelets_10e9_per_l": [60, 90, 150, 250],
    "labs.neutrophils_10e9_per_l": [0.8, 1.2, 2.0, 4.0],
}

EXTRAHEPATIC_CHOICES: list[dict[str, Any]] = [
    {"present": False, "sites": [], "peritoneal_carcinomatosis": "none"},
    {"present": True, "sites": ["lymph_nodes"], "peritoneal_carcinomatosis": "none"},
    {"present": True, "sites": ["bone", "lung"], "peritoneal_carcinomatosis": "none"},
    {"present": True, "sites": ["peritoneum"], "peritoneal_carcinomatosis": "limited_resectable"},
    {"present": True, "sites": ["peritoneum", "other"], "peritoneal_carcinomatosis": "diffuse_unresectable"},
]


def _consistent(doc: dict[str, Any]) -> dict[str, Any]:
    """Random combinations can contradict themselves ('poorly differentiated' with a G1/G2
    proliferation, 100 % burden from one 3 cm lesion, an ongoing liver resection, ...), which
    the patient model refuses (knowledge/consistency.yaml): change the draw to agree then.
    tests/test_consistency.py checks that every generator's documents are accepted."""
    path = doc.get("pathology") or {}
    ki, mi = path.get("ki67_percent"), path.get("mitoses_per_10hpf")
    if path.get("differentiation") == "poor" and (ki is not None or mi is not None) and (ki or 0) <= 20 and (mi or 0) <= 20:
        doc["pathology"] = path = {**path, "ki67_percent": (ki or 0) + 40}
    ki67, mit = path.get("ki67_percent"), path.get("mitoses_per_10hpf")
    if path.get("reported_grade") is not None and (ki67 is not None or mit is not None
                                                   or (path.get("differentiation") == "poor" and path["reported_grade"] != "G3")):
        # the report's grade is only for records without an index
        doc["pathology"] = {**(doc.get("pathology") or {}), "reported_grade": None}
    liver = doc.get("liver") or {}
    f = liver.get("resectable_fraction_percent")
    if f is not None and liver.get("resectable") is not None:
        liver = doc["liver"] = {**liver, "resectable": f >= 100}
    if liver.get("pattern") == "disseminated" and (liver.get("resectable") or (f is not None and f >= 100)):
        # type III is not completely resectable by definition (refused as contradictory)
        liver = doc["liver"] = {**liver, "resectable": False if liver.get("resectable") is not None else None,
                                "resectable_fraction_percent": 50 if f is not None else None}
    if liver.get("liver_function") == "normal" and liver.get("child_pugh") in ("B", "C"):
        liver = doc["liver"] = {**liver, "child_pugh": "A"}
    k, img = doc.get("sstr_uptake_krenning"), doc.get("sstr_imaging")
    if k is not None and ((img == "negative" and k >= 2) or (img == "positive" and k == 0)):
        doc["sstr_uptake_krenning"] = 1 if img == "negative" else 2
    if doc.get("functional_syndrome") == "none":
        doc.pop("functional_control", None)
    ehd = doc.get("extrahepatic") or {}
    if ehd.get("present") is False and ehd.get("symptomatic"):
        doc["extrahepatic"] = ehd = {**ehd, "symptomatic": False}
    if ehd.get("resectable") and ehd.get("peritoneal_carcinomatosis") == "diffuse_unresectable":
        doc["extrahepatic"] = {**ehd, "resectable": False}
    if (ehd.get("resectable") is False and ehd.get("peritoneal_carcinomatosis") == "limited_resectable"
            and ehd.get("sites") == ["peritoneum"]):
        # the peritoneum the only site: what cannot be removed is diffuse carcinomatosis
        doc["extrahepatic"] = {**ehd, "peritoneal_carcinomatosis": "diffuse_unresectable"}
    for p in doc.get("prior_therapies") or []:
        if p.get("outcome") != "progression":
            p.pop("months_to_progression", None)
    n, pattern = liver.get("lesion_count"), liver.get("pattern")
    if n is not None and pattern == "single" and n != 1:
        doc["liver"] = {**liver, "lesion_count": 1}
    elif n is not None and pattern in ("dominant_with_satellites", "disseminated") and n <= 1:
        doc["liver"] = {**liver, "lesion_count": 8 if pattern == "dominant_with_satellites" else 30}
    # the plausibility bounds of knowledge/consistency.yaml: a burden the lesions can hold
    liver = doc.get("liver") or {}
    n, size, burden = liver.get("lesion_count"), liver.get("largest_lesion_cm"), liver.get("burden_percent")
    if n is not None and size is not None and burden is not None:
        most = (5 if size <= 2 else 25 if size <= 5 else 80 if size <= 10 else 100) if n == 1 else \
            25 if 2 <= n <= 10 and size <= 2 else 100
        least = 25 if size >= 30 else 10 if size >= 20 else 1 if size >= 10 else 0
        if not least <= burden <= most:
            doc["liver"] = {**liver, "burden_percent": min(max(burden, least), most)}
    primary = doc.get("primary") or {}
    if primary.get("site") == "unknown_primary" and primary.get("resected"):
        doc["primary"] = {**primary, "resected": False}  # a resected primary is a known one
    course = doc.get("course") or {}
    if (course.get("status") == "stable" and course.get("progression_within_12_months")
            and (course.get("stable_months") or 0) >= 12):
        doc["course"] = {**course, "stable_months": 6}   # stable since the progression
    age = doc.get("age_years")
    if age is not None and (course := doc.get("course") or {}).get("stable_months") is not None \
            and course["stable_months"] > age * 12:
        doc["course"] = {**course, "stable_months": age * 12}
    for p in doc.get("prior_therapies") or []:
        if p.get("therapy") in PROCEDURES and p.get("ongoing"):
            p["ongoing"] = False   # a procedure is recorded once done
        if age is not None and (p.get("months_to_progression") or 0) > age * 12:
            p["months_to_progression"] = age * 12
    return doc


# treatments the consistency checks refuse as "still ongoing" (knowledge/consistency.yaml)
PROCEDURES = ("liver_resection", "thermal_ablation", "liver_transplant", "tae", "tace", "deb_tace", "sirt", "ebrt")


def random_patient_dict(rng, unknown_share: float = 0.0) -> dict[str, Any]:
    """A random valid patient document; each field unknown with probability ``unknown_share``."""
    doc: dict[str, Any] = {}
    for key, values in FIELD_VALUES.items():
        if rng.random() < unknown_share:
            continue
        node = doc
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = values[rng.randrange(len(values))]
    if rng.random() >= unknown_share:
        ehd = dict(EXTRAHEPATIC_CHOICES[rng.randrange(len(EXTRAHEPATIC_CHOICES))])
        ehd["resectable"] = doc.get("extrahepatic", {}).get("resectable")
        ehd["symptomatic"] = doc.get("extrahepatic", {}).get("symptomatic")
        doc["extrahepatic"] = ehd
    if rng.random() >= unknown_share:
        n = rng.randrange(4)
        doc["prior_therapies"] = [_prior(rng, unknown_share) for _ in range(n)]
    return _consistent(doc)



def sparse_patients(seed: int, n: int) -> list[tuple[dict[str, Any], Any]]:
    """``n`` random patients as case reports give them (20, 40 or 60 % of their facts unknown),
    each as (document, validated patient); the documents the model refuses are skipped."""
    import random

    from .patient import InvalidPatient, validate_patient

    rng = random.Random(seed)  # nosec B311 - reproducible test patients, not a secret
    out: list[tuple[dict[str, Any], Any]] = []
    while len(out) < n:
        doc = random_patient_dict(rng, rng.choice([0.2, 0.4, 0.6]))
        try:
            out.append((doc, validate_patient(doc)))
        except InvalidPatient:
            continue
    return out

def perturbed_patient_dict(rng, changes: int = 3) -> dict[str, Any]:
    """BASE with a few random fields changed: realistic neighbours of an ordinary patient,
    where combinations that independent draws rarely make (a Milan candidate) are common."""
    doc = copy.deepcopy(BASE)
    keys = list(FIELD_VALUES)
    for _ in range(changes):
        key = keys[rng.randrange(len(keys))]
        node = doc
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        values = FIELD_VALUES[key]
        node[parts[-1]] = values[rng.randrange(len(values))]
    if doc["functional_syndrome"] != "none" and doc.get("functional_control") is None:
        doc["functional_control"] = ["untreated", "controlled", "refractory"][rng.randrange(3)]
    return _consistent(doc)


def _prior(rng, unknown_share: float) -> dict[str, Any]:
    p: dict[str, Any] = {"therapy": OPTION_IDS[rng.randrange(len(OPTION_IDS))],
                         "outcome": ["response", "stable", "progression", "intolerance"][rng.randrange(4)]}
    if p["outcome"] == "progression" and rng.random() >= unknown_share:
        p["months_to_progression"] = [6, 12, 18, 30][rng.randrange(4)]
    if rng.random() >= unknown_share:
        p["ongoing"] = rng.random() < 0.3
    return p


def patient_strategy(unknown: bool = True):
    """A hypothesis strategy of valid patient documents (fields may be unknown)."""
    from hypothesis import strategies as st

    def field(values):
        s = st.sampled_from(values)
        return st.one_of(st.none(), s) if unknown else s

    def section(keys: list[str]):
        return st.fixed_dictionaries({k.split(".")[1]: field(FIELD_VALUES[k]) for k in keys})

    sections: dict[str, list[str]] = {}
    top: dict[str, Any] = {}
    for key, values in FIELD_VALUES.items():
        if "." in key:
            sections.setdefault(key.split(".")[0], []).append(key)
        else:
            top[key] = field(values)
    for name, keys in sections.items():
        if name != "extrahepatic":
            top[name] = section(keys)
    ehd = st.tuples(st.sampled_from(EXTRAHEPATIC_CHOICES), field([True, False])).map(
        lambda t: {**t[0], "symptomatic": t[1]})
    top["extrahepatic"] = st.one_of(st.none(), ehd) if unknown else ehd
    prior = st.lists(st.fixed_dictionaries({"therapy": st.sampled_from(OPTION_IDS),
                                            "outcome": st.sampled_from(["response", "stable", "progression", "intolerance"]),
                                            "months_to_progression": st.one_of(st.none(), st.sampled_from([6, 12, 18, 30])),
                                            "ongoing": st.one_of(st.none(), st.booleans())}),
                     max_size=3)
    top["prior_therapies"] = st.one_of(st.none(), prior) if unknown else prior
    return st.fixed_dictionaries(top).map(_consistent)


def forget(doc: dict[str, Any], dotted: str) -> dict[str, Any]:
    """A copy of ``doc`` with one field made unknown."""
    out = copy.deepcopy(doc)
    node = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.get(part) or {}
    if isinstance(node, dict):
        node.pop(parts[-1], None)
    return out


def known_fields(doc: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every known scalar field of a document (lists count as one field)."""
    out = []
    for k, v in doc.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            out += known_fields(v, path + ".")
        elif v is not None:
            out.append(path)
    return out


_ = ExtrahepaticSite  # re-exported for rule authors


def stop_process(proc, settle: float = 0.1) -> None:
    """Stop a server started by a test: terminate, and kill if it does not go in 15 s."""
    import subprocess
    import time

    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    time.sleep(settle)  # let reader threads drain the pipes


# --------------------------------------------------------------------------- `nelm serve` in tests

SERVING = re.compile(r"serving the tumour-board app at (http://\S+/)")


class NelmServer:
    """``python -m nelm.cli serve --port 0 ...`` on a free loopback port; ``url`` once it serves.

    Reader threads collect its output; :meth:`kill` is SIGKILL (a crash), :meth:`stop` a
    polite stop. Either way the process is gone when they return.
    """

    def __init__(self, args: list[str], env: dict[str, str], wait: float = 60):
        self.proc = subprocess.Popen([sys.executable, "-m", "nelm.cli", "serve", "--host", "127.0.0.1",  # nosec B603 - own CLI, no shell
                                      "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.ready = threading.Event()
        self.url = ""
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout, True), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr, False), daemon=True)]
        for t in self._readers:
            t.start()
        deadline = time.monotonic() + wait
        while not self.ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"server did not start (exit {self.proc.returncode}): {self.output[-3000:]}")

    def _read(self, stream, sink: list[str], watch: bool) -> None:
        for line in stream:
            sink.append(line)
            m = SERVING.search(line) if watch else None
            if m:
                self.url = m.group(1)
                self.ready.set()

    @property
    def output(self) -> str:
        return "".join(self.stdout + self.stderr)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(15)
        for t in self._readers:
            t.join(5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_process(self.proc, settle=0)
        for t in self._readers:
            t.join(5)


def server_env_for(tmp_path, **extra: str) -> dict[str, str]:
    """The environment for a ``nelm`` subprocess in a test: no token, database or chain
    settings inherited from the caller, and a private data directory under ``tmp_path``."""
    drop = ("NELM_API_TOKEN", "NELM_DATABASE_URL", "NELM_ALLOW_BROKEN_CHAIN")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    return env | extra


def start_writers(work: Callable[[int], None], n: int) -> tuple[Callable[[float], None], list[BaseException]]:
    """``work(k)`` for k in range(n), each on a thread of its own, all started at once: a
    function that joins them (each within ``timeout`` seconds) and the exceptions they raised."""
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            work(k)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()

    def join(timeout: float) -> None:
        for t in threads:
            t.join(timeout=timeout)

    return join, errors


def pg_frame(cursor, query: str):
    """The rows a PostgreSQL ``query`` returns as a Polars frame of text columns (the tests
    compare the SQL views' output, value by value, with nelm screen's, read the same way)."""
    import polars as pl

    cursor.execute(query)
    names = [d.name for d in cursor.description]
    return pl.DataFrame(cursor.fetchall(), schema={n: pl.String for n in names}, orient="row")


# --------------------------------------------------------------------------- clinical red lines
#
# What a tumour board would never offer, stated from clinical knowledge and the two source
# reviews (Mayo 2012, J Am Coll Surg; review 002 on liver metastases of GEP-NETs), written
# apart from the knowledge base: nothing below reads a rule, a gate or a criterion of
# nelm.knowledge, so a wrong rule is caught rather than copied. Each line reads the patient
# document (with a branch's `if` facts filled in) and the options the assessment offers:
#
# - "now": every option of a step whose `when` is `now` (the working plan's and each branch's);
# - "verdict": an option whose verdict today (assessment.options) is preferred or reasonable;
# - "later": an option of a later step whose expected verdict is preferred or reasonable.
#
# Each line has a scope: ANY place, TODAY (now steps and today's verdicts) or FIRST (now steps
# only: lines about the order of treatment, where a positive verdict today may rightly stand
# for a later line). Unknown facts never cross a line (a branch says what happens otherwise).

EMBOLIZATION = ("tae", "tace", "deb_tace")
CHEMOTHERAPY = ("platinum_etoposide", "capecitabine_temozolomide", "streptozocin_based")
TARGETED = ("everolimus", "sunitinib", "cabozantinib")
PANCREATIC_TYPE_SYNDROMES = ("insulinoma", "gastrinoma", "glucagonoma", "vipoma")
_POSITIVE = ("preferred", "reasonable")
ANY, TODAY, FIRST = "any", "today", "first"


class _Offer:
    """One option offered somewhere in an assessment."""
    __slots__ = ("option", "where", "kind", "lead", "intent", "verdict", "step_options")

    def __init__(self, option: str, where: str, kind: str, lead: bool, intent: str | None,
                 verdict: str | None, step_options: tuple[str, ...] = ()):
        self.option, self.where, self.kind, self.lead = option, where, kind, lead
        self.intent, self.verdict, self.step_options = intent, verdict, step_options

    def in_scope(self, scope: str) -> bool:
        return scope == ANY or self.kind == "now" or (scope == TODAY and self.kind == "verdict")


def _get(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    node = doc
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = copy.deepcopy(value)


class _Facts:
    """The document's known facts, read the way a clinician reads them."""

    def __init__(self, doc: dict[str, Any], classification: dict[str, Any] | None):
        self.doc = doc
        cls = classification or {}
        self.get = lambda dotted: _get(doc, dotted)
        differentiation = self.get("pathology.differentiation")
        # neuroendocrine carcinoma: poorly differentiated (a branch may assume it; the
        # classification already says so for a known differentiation)
        self.nec = differentiation == "poor" or (cls.get("category") == "NEC" and differentiation != "well")
        ki67, mitoses = self.get("pathology.ki67_percent"), self.get("pathology.mitoses_per_10hpf")
        self.g3 = (self.nec or (ki67 is not None and ki67 > 20) or (mitoses is not None and mitoses > 20)
                   or self.get("pathology.reported_grade") == "G3" or cls.get("who_grade") == "G3")
        syndrome = self.get("functional_syndrome")
        self.syndrome = syndrome if syndrome not in (None, "none") else None
        if self.syndrome is None and syndrome is None and self.get("functional_control") is not None:
            self.syndrome = "unnamed"   # a recorded control state (untreated, controlled, refractory) is a syndrome's
        ecog = self.get("ecog")
        self.ecog34 = ecog is not None and ecog >= 3
        self.child_c = self.get("liver.child_pugh") == "C"
        bili = self.get("liver.bilirubin_mg_dl")
        self.bili_over_3 = bili is not None and bili > 3
        # no anticancer treatment is possible: best supportive care (ECOG 3-4, or a decompensated
        # liver, which the sources pair as Child-Pugh C or bilirubin above 3 mg/dL)
        self.bsc = self.ecog34 or self.child_c or self.bili_over_3
        self.symptomatic = self.get("symptomatic") is True or self.syndrome is not None
        ehd = self.get("extrahepatic") or {}
        pc = ehd.get("peritoneal_carcinomatosis")
        # deposits the surgeon judged unremovable are deposits; with `present: false` the
        # resectability flag describes nothing (the document says there is no extrahepatic disease)
        self.ehd_present = ehd.get("present") is not False and (
            ehd.get("present") is True or bool(ehd.get("sites")) or ehd.get("resectable") is False
            or pc in ("limited_resectable", "diffuse_unresectable"))
        self.ehd_unresectable = self.ehd_present and (ehd.get("resectable") is False or pc == "diffuse_unresectable")
        self.ehd_words = (f"extrahepatic disease (sites: {', '.join(ehd.get('sites') or []) or 'not named'}"
                          f"{', peritoneal carcinomatosis ' + pc if pc not in (None, 'none') else ''})")
        # a well-differentiated NET of grade G1 or G2 by a known index (or the reported grade): read from the
        # document, so that a branch's filled-in Ki-67 counts, and never where the grade could be G3
        known_index = ki67 is not None or mitoses is not None or self.get("pathology.reported_grade") in ("G1", "G2")
        self.net_g1g2 = (not self.g3 and known_index and differentiation != "poor"
                         and (differentiation == "well" or cls.get("category") == "NET"))
        prior = self.get("prior_therapies")
        self.treatment_naive = prior == []   # a known empty history; unknown is not naive

    def value(self, dotted: str) -> str:
        return f"{dotted} = {self.get(dotted)!r}"


def _check_lines(f: _Facts, offers: list[_Offer]) -> list[str]:
    out: list[str] = []

    def cross(scope: str, options: tuple[str, ...] | str, why: str, *, when: Callable[[_Offer], bool] | None = None) -> None:
        options = (options,) if isinstance(options, str) else options
        for o in offers:
            if o.option in options and o.in_scope(scope) and (when is None or when(o)):
                out.append(f"{why}: {o.option} offered in {o.where}")

    now_lead = [o for o in offers if o.kind == "now" and o.lead]

    # --- neuroendocrine carcinoma (poorly differentiated, high Ki-67): systemic platinum-based
    # chemotherapy is the primary treatment "even if the extent of NELM appears limited"; surgery
    # is usually not warranted, locally directed therapy does not change the course (Mayo 2012;
    # review 002: NEC G3 not amenable to resection; chemotherapy the standard of care).
    if f.nec:
        nec = f"neuroendocrine carcinoma ({f.value('pathology.differentiation')}, or classified NEC)"
        # transplant: Milan excludes high-grade carcinomas (Mazzaferro, in both sources)
        cross(ANY, "liver_transplant", f"{nec}: no liver transplantation")
        # resection now: chemotherapy first; surgery at most after a response (an after_response step)
        cross(TODAY, "liver_resection", f"{nec}: no liver resection before chemotherapy")
        # liver-directed treatment as the first step does not treat a systemic disease
        cross(FIRST, (*EMBOLIZATION, "sirt", "thermal_ablation"), f"{nec}: no liver-directed treatment as the first step")
        # agents proven in well-differentiated NET only must not displace chemotherapy
        cross(FIRST, (*TARGETED, "prrt", "interferon_alpha"), f"{nec}: no targeted drug, PRRT or interferon as the first step",
              when=lambda o: o.lead)
        # the analogue alone is no anticancer treatment of a carcinoma. Accepted exception (earlier
        # board reviews): it is best supportive care where chemotherapy is out (ECOG 3-4, Child-Pugh C;
        # bilirubin above 3 mg/dL counted with Child-Pugh C as everywhere here) or treats a recorded syndrome
        for o in now_lead:
            if o.option == "ssa" and set(o.step_options) <= {"ssa"} and not (f.bsc or f.syndrome is not None):
                out.append(f"{nec}, {f.value('ecog')}, {f.value('liver.child_pugh')}, {f.value('liver.bilirubin_mg_dl')}, "
                           f"no hormonal syndrome recorded: a somatostatin analogue alone is not the first treatment "
                           f"of a carcinoma: ssa offered in {o.where}")

    # --- receptor imaging: PRRT needs uptake at least that of the liver (Krenning 2 or more);
    # without receptors the analogue controls neither the tumour nor (rarely) more than a syndrome
    krenning = f.get("sstr_uptake_krenning")
    if f.get("sstr_imaging") == "negative" or (krenning is not None and krenning <= 1):
        sstr = f"no somatostatin-receptor expression ({f.value('sstr_imaging')}, {f.value('sstr_uptake_krenning')})"
        cross(ANY, "prrt", f"{sstr}: no PRRT")
        controlled_on_it = any(p.get("therapy") == "ssa" and p.get("outcome") in ("response", "stable")
                               for p in f.get("prior_therapies") or [])
        if f.syndrome is None and not controlled_on_it:
            # an analogue for a recorded hormonal syndrome stays allowed, and so does one the
            # patient's own disease has already been controlled on (the response outweighs the scan)
            cross(ANY, "ssa", f"{sstr}, no hormonal syndrome recorded: no analogue for tumour control")

    # --- decompensated liver: embolization, radioembolization, ablation and surgery risk liver
    # failure; PRRT is not given into it (review 002: impaired liver function contraindicates TACE and TA)
    if f.child_c or f.bili_over_3:
        liver = f"decompensated liver ({f.value('liver.child_pugh')}, {f.value('liver.bilirubin_mg_dl')})"
        cross(ANY, (*EMBOLIZATION, "sirt", "thermal_ablation", "liver_resection", "liver_transplant", "prrt"),
              f"{liver}: no liver-directed treatment, surgery or PRRT")

    # --- portal vein thrombosis: occluding the artery of a liver without portal inflow infarcts it
    if f.get("liver.portal_vein_thrombosis") is True:
        cross(ANY, EMBOLIZATION, f"portal vein thrombosis ({f.value('liver.portal_vein_thrombosis')}): no arterial embolization")

    # --- fitness: major liver surgery needs a fit patient; ECOG 3-4 tolerates no anticancer
    # procedure or cytotoxic/targeted drug (best supportive care, an analogue at most)
    if f.ecog34 or f.get("fit_for_major_surgery") is False:
        unfit = f"unfit for major surgery ({f.value('ecog')}, {f.value('fit_for_major_surgery')})"
        cross(ANY, ("liver_resection", "liver_transplant"), f"{unfit}: no liver resection or transplantation")
    if f.ecog34:
        cross(ANY, (*EMBOLIZATION, "sirt", "prrt", *CHEMOTHERAPY, *TARGETED),
              f"performance status {f.value('ecog')}: no embolization, SIRT, PRRT, chemotherapy or targeted drug")

    # --- extrahepatic disease: transplantation only for liver-only disease (Milan); removing the
    # liver disease cannot cure a patient whose other deposits stay (ENETS criteria in review 002)
    if f.ehd_present:
        cross(ANY, "liver_transplant", f"{f.ehd_words}: no liver transplantation")
    if f.ehd_unresectable:
        words = f"unresectable {f.ehd_words} ({f.value('extrahepatic.resectable')})"
        cross(ANY, "liver_resection", f"{words}: no liver resection with curative intent",
              when=lambda o: o.intent == "curative")
        # debulking beside deposits left behind is for symptoms (Mayo 2012: "patients with limited,
        # stable EHD can be considered for surgery, especially if the patient is symptomatic"). Accepted
        # exceptions: cytoreductive liver surgery in a symptomatic patient (earlier board reviews: beside
        # nodal deposits), and beside nodal deposits alone, the limited EHD of Mayo's sentence
        nodal_only = set(f.get("extrahepatic.sites") or []) == {"lymph_nodes"} and \
            f.get("extrahepatic.peritoneal_carcinomatosis") in (None, "none")
        cross(ANY, "liver_resection", f"{words}, asymptomatic ({f.value('symptomatic')}, no hormonal syndrome): "
              f"no debulking liver resection",
              when=lambda o: o.intent != "curative" and not f.symptomatic and not nodal_only)

    # --- the heart: unoperated carcinoid valve disease or right heart failure raises hepatic venous
    # pressure (bleeding, liver failure): valves first, liver surgery after (ENETS, review 002)
    if f.get("carcinoid_heart_disease") == "present" or f.get("right_heart_insufficiency") is True:
        heart = f"heart ({f.value('carcinoid_heart_disease')}, {f.value('right_heart_insufficiency')})"
        cross(TODAY, ("liver_resection", "liver_transplant"), f"{heart}: no liver resection or transplantation now")

    # --- lung shunt above 20 %: radiation pneumonitis after radioembolization
    shunt = f.get("liver.lung_shunt_percent")
    if shunt is not None and shunt > 20:
        cross(ANY, "sirt", f"lung shunt fraction {f.value('liver.lung_shunt_percent')} (over 20 %): no SIRT")

    # --- a treatment the disease progressed on, or that was not tolerated, is not the lead again
    # (the analogue continued as an add-on beside the next line is allowed: add-ons are not leads)
    for p in f.get("prior_therapies") or []:
        therapy, outcome, months = p.get("therapy"), p.get("outcome"), p.get("months_to_progression")
        if outcome not in ("progression", "intolerance") or therapy in ("clinical_trial", "ebrt"):
            continue  # another trial is another treatment; radiotherapy treats a site, the next site is new
        if therapy in ("liver_resection", "thermal_ablation"):
            # a recurrence after surgery or ablation is treated by repeat surgery (Mayo 2012), and
            # whether a patient can face another operation is today's fitness (lines above)
            continue
        if therapy == "ssa" and outcome == "progression" and (f.syndrome is not None or f.bsc):
            continue  # the analogue kept for a hormonal syndrome, or as best supportive care
        if (outcome == "progression" and therapy in (*EMBOLIZATION, "sirt", "prrt", *CHEMOTHERAPY)
                and months is not None and months >= 12):
            continue  # re-treatment after a year's control (repeat embolization, PRRT or chemotherapy rechallenge)
        if outcome == "progression" and therapy in (*EMBOLIZATION, "sirt") and (months is None or months > 6):
            # repeat liver-directed treatment for liver progression is routine where the first controlled the liver
            # for a worthwhile time; an unrecorded interval is not a short one (unknown stays unknown): offered at
            # most as reasonable. Progression within 6 months means it failed: another line
            continue
        for o in offers:
            if therapy == "ssa" and outcome == "progression" and o.kind == "now" and set(o.step_options) <= {"ssa"}:
                # accepted: the analogue kept alone where nothing else is offered today, as a bridge (a shortened
                # interval held slow progression off for some months in CLARINET FORTE); what stays a crossing is
                # the analogue leading again where another line is offered beside it
                continue
            if o.option == therapy and o.lead and o.kind in ("now", "later"):
                out.append(f"prior {therapy} ended in {outcome}"
                           f"{f' after {months} months' if months is not None else ''}: "
                           f"{therapy} offered again as a leading treatment in {o.where}")

    # --- transplantation: only within Milan-like selection (Mazzaferro, in both sources): a low-grade
    # NET, liver-only disease, a resected primary drained by the portal system, at most half the liver
    # replaced, stable disease, a young patient (the sources say 55 years or younger; later series
    # allow 60, taken here as the line), and nothing else ruling it out
    age = f.get("age_years")
    if age is not None and age > 60:
        cross(ANY, "liver_transplant", f"{f.value('age_years')}: no liver transplantation beyond 60 years")
    if f.g3 and not f.nec:
        cross(ANY, "liver_transplant", "grade G3 (Ki-67 or mitoses above 20, or reported G3): no liver transplantation")
    site = f.get("primary.site")
    if site in ("lung", "thymus", "rectum", "unknown_primary"):
        cross(ANY, "liver_transplant", f"{f.value('primary.site')} (not a known primary drained by the portal system): "
              "no liver transplantation")
    burden = f.get("liver.burden_percent")
    if burden is not None and burden > 50:
        cross(ANY, "liver_transplant", f"{f.value('liver.burden_percent')} (over half the liver): no liver transplantation")
    if f.get("liver.resectable") is True or (f.get("liver.resectable_fraction_percent") or 0) >= 100:
        # transplantation is for liver disease surgery cannot remove (both sources)
        cross(ANY, "liver_transplant", f"completely resectable liver disease ({f.value('liver.resectable')}, "
              f"{f.value('liver.resectable_fraction_percent')}): resection, not transplantation")
    if f.get("transplant_contraindication") is True:
        cross(ANY, "liver_transplant", f"{f.value('transplant_contraindication')}: no liver transplantation")
    if f.get("course.status") == "progressive":
        cross(TODAY, "liver_transplant", f"{f.value('course.status')} (not stable for 6 months): no liver transplantation now")

    # --- a bilio-enteric bypass makes embolization prone to liver abscess; accepted exception
    # (earlier board reviews): embolization capped at reasonable, never preferred
    if f.get("liver.biliary_enteric_bypass") is True:
        cross(ANY, EMBOLIZATION, f"{f.value('liver.biliary_enteric_bypass')}: embolization never preferred",
              when=lambda o: o.verdict == "preferred")

    # --- sunitinib is proven in pancreatic NET only (Raymond 2011); accepted exception (earlier
    # board reviews): a pancreatic-type syndrome recorded beside another primary site
    if site in ("duodenum", "stomach", "jejunum_ileum", "appendix", "colon", "rectum", "lung", "thymus") \
            and f.syndrome not in PANCREATIC_TYPE_SYNDROMES:
        cross(ANY, "sunitinib", f"{f.value('primary.site')}, {f.value('functional_syndrome')}: no sunitinib outside pancreatic NET")

    # --- kidneys and marrow before PRRT: the radiopeptide is cleared by and irradiates the kidneys and the
    # marrow (review 002: "rare side effects ... kidney and bone marrow"). Every PRRT admission limit retrieved
    # asks for more than these lines: creatinine clearance above 50 mL/min and platelets at least 100 x 10^9/L
    # (Rotterdam referral criteria), GFR at least 50 and platelets at least 100 (LUTIA protocol; both in the
    # enets2017_prrt record). The kidney line is drawn at 30 mL/min, below every source's limit, so that PRRT
    # with adapted activity between 30 and 50 (the knowledge base's caution) is not called a crossing; kidneys
    # do not recover, so it holds in every step. Counts can recover: the marrow lines hold today only, at the
    # platelet limit both sources set to start PRRT; the neutrophil line of 1.0 x 10^9/L is this checker's
    # default standing in for their leucocyte limits (2 and 3 x 10^9/L; the document records neutrophils)
    egfr = f.get("labs.egfr_ml_min")
    if egfr is not None and egfr < 30:
        cross(ANY, "prrt", f"kidney function {f.value('labs.egfr_ml_min')} (eGFR below 30 mL/min): no PRRT")
    platelets, neutrophils = f.get("labs.platelets_10e9_per_l"), f.get("labs.neutrophils_10e9_per_l")
    if (platelets is not None and platelets < 100) or (neutrophils is not None and neutrophils < 1.0):
        cross(TODAY, "prrt", f"marrow ({f.value('labs.platelets_10e9_per_l')}, {f.value('labs.neutrophils_10e9_per_l')}; "
              "platelets below 100 or neutrophils below 1.0 x 10^9/L): no PRRT now")

    # --- cytotoxic chemotherapy and the labels. Capecitabine is contraindicated below a creatinine clearance of
    # 30 mL/min and in Child-Pugh C (its product information, in the systemic_organ_function record): in every step.
    # Temozolomide's label starts a cycle only with neutrophils above 1.5 and platelets above 100 x 10^9/L (same
    # record): today only (counts recover). The same two counts are taken for streptozocin and platinum-etoposide
    # as the usual counts to start a cytotoxic cycle (this checker's default: no retrieved label for those regimens)
    if egfr is not None and egfr < 30:
        cross(ANY, "capecitabine_temozolomide", f"kidney function {f.value('labs.egfr_ml_min')} (below 30 mL/min): "
              "no capecitabine (label contraindication)")
    if f.child_c:
        cross(ANY, "capecitabine_temozolomide", f"{f.value('liver.child_pugh')}: no capecitabine (label contraindication)")
    if (platelets is not None and platelets < 100) or (neutrophils is not None and neutrophils < 1.5):
        cross(TODAY, CHEMOTHERAPY, f"marrow ({f.value('labs.platelets_10e9_per_l')}, {f.value('labs.neutrophils_10e9_per_l')}; "
              "platelets below 100 or neutrophils below 1.5 x 10^9/L): no cytotoxic chemotherapy now")

    # --- cytotoxic chemotherapy in a low- or intermediate-grade NET. Review 000: responses are low, and "cytotoxic
    # chemotherapy should only be contemplated in these patients after other therapeutic avenues have been exhausted";
    # review 002: an option "in symptomatic and progressive" well-differentiated NET, the platinum-based regimen being
    # the standard of poorly differentiated carcinoma (review 000: "usually with a platinum-based regimen"). So:
    # (1) never the first treatment of an untreated, stable G1/G2 NET of the digestive tract outside the pancreas
    # (accepted exception: pancreatic NET, where both reviews report chemotherapy's responses, and unknown or other
    # primaries, which may be pancreatic); (2) platinum-etoposide never leads for a G1/G2 NET, in any step
    if f.net_g1g2:
        gi = ("duodenum", "stomach", "jejunum_ileum", "appendix", "colon", "rectum")
        if site in gi and f.get("course.status") == "stable" and f.treatment_naive:
            cross(FIRST, CHEMOTHERAPY, f"untreated stable G1/G2 NET of the {site} ({f.value('course.status')}, "
                  f"{f.value('pathology.ki67_percent')}, no earlier treatment): no cytotoxic chemotherapy as the first treatment",
                  when=lambda o: o.lead)
        cross(ANY, "platinum_etoposide", f"well-differentiated G1/G2 NET ({f.value('pathology.ki67_percent')}, "
              f"{f.value('pathology.mitoses_per_10hpf')}): platinum-etoposide, the carcinoma regimen, never leads",
              when=lambda o: o.lead)

    # --- transplantation needs the primary removed first, by an operation separate from the transplant, and a
    # stable course observed before listing (Milan, in both sources: 6 months; the Milan group's 2023 statement:
    # 3-6 months). A later step may follow the primary's resection; today it may not
    if f.get("primary.resected") is False and site != "unknown_primary":
        cross(TODAY, "liver_transplant", f"{f.value('primary.resected')}: no liver transplantation before the primary is removed")
    stable = f.get("course.stable_months")
    if stable is not None and stable < 3:
        cross(TODAY, "liver_transplant", f"{f.value('course.stable_months')} (under the 3-6 months of stability the Milan "
              "criteria observe): no liver transplantation now")

    # --- thermal ablation reaches a zone of about 3 to 5 cm (radiofrequency, Gillams' review on PMC3036313), and
    # local recurrence after ablating NET metastases grows with size (review 000): a lesion over 5 cm is not
    # treated by ablation alone. Accepted exception: ablation in one step with resection (the large lesion
    # resected, the small ones ablated); today's verdicts are not read (a positive one may stand for that combination)
    largest = f.get("liver.largest_lesion_cm")
    if largest is not None and largest > 5:
        for o in offers:
            if o.option == "thermal_ablation" and o.kind in ("now", "later") and "liver_resection" not in o.step_options:
                out.append(f"largest liver lesion {f.value('liver.largest_lesion_cm')} (over the 5 cm an ablation zone covers): "
                           f"thermal ablation without resection offered in {o.where}")

    # --- a bilio-enteric bypass makes ablation prone to liver abscess too (tace_biliary_abscess record: the main
    # predisposing factor after embolization or ablation; Odisio 2016, abscess after ablation with a
    # hepaticojejunostomy). Accepted exception as for embolization: ablation capped at reasonable, never preferred
    if f.get("liver.biliary_enteric_bypass") is True:
        cross(ANY, "thermal_ablation", f"{f.value('liver.biliary_enteric_bypass')}: ablation never preferred",
              when=lambda o: o.verdict == "preferred")
    return out


def _step_offers(steps: list[dict[str, Any]], where: str) -> list[_Offer]:
    out = []
    for s in steps or []:
        when = s.get("when")
        options = list(s.get("options") or [])
        add_on = set(s.get("add_on") or [])
        expected = s.get("expected_verdicts") or {}
        place = f"{where} step {s.get('step')} ({when})"
        for oid in options:
            verdict = expected.get(oid)
            if when == "now":
                kind = "now"
            elif verdict in _POSITIVE:
                kind = "later"
            else:
                continue
            out.append(_Offer(oid, place, kind, oid not in add_on, s.get("intent"), verdict,
                              tuple(o for o in options if o not in add_on)))
    return out


def _consistent_with(doc: dict[str, Any], cond: dict[str, Any]) -> dict[str, Any] | None:
    """The document with a branch condition's facts filled in, or None where it contradicts them."""
    filled = copy.deepcopy(doc)
    for field, value in [(cond.get("field"), cond.get("value")), *(cond.get("with") or {}).items()]:
        if not field:
            continue
        known = _get(doc, field)
        if known not in (None, []) and known != value:   # an empty site list beside unknown disease is unknown
            return None
        _put(filled, field, value)
    return filled


_NEGATIVE = ("not_recommended", "contraindicated")


def _plan_lines(plan: dict[str, Any], options: dict[str, dict[str, Any]]) -> list[str]:
    """The plan against itself and against today's verdicts (contract v3), whatever the patient: lines a
    reader relies on without re-checking. ``options``: today's verdicts by option id (the working plan's)."""
    out: list[str] = []
    ways = [("the working plan", plan)] + [(f"branch {k}", b) for k, b in enumerate(plan.get("branches") or [])]
    for where, p in ways:
        status, steps = p.get("status"), p.get("steps") or []
        # "determined" promises that no missing fact could change the lead: then nothing is missing, assumed or to order
        if status == "determined" and (p.get("missing") or p.get("workup") or p.get("assumptions")):
            out.append(f"plan status determined while it names missing facts {p.get('missing')}, "
                       f"{len(p.get('workup') or [])} work-up order(s), {len(p.get('assumptions') or [])} assumption(s): in {where}")
        # a plan that names no step at all is one that names no treatment: undetermined, never determined or conditional
        if not steps and status != "undetermined":
            out.append(f"plan status {status} with no step: in {where}")
        for s in steps:
            place = f"{where} step {s.get('step')} ({s.get('when')})"
            for oid, v in (s.get("expected_verdicts") or {}).items():
                # what is given now is recommended now; a later step may name an option a board would weigh
                # then (not recommended today), never one expected contraindicated
                if s.get("when") == "now" and v in _NEGATIVE:
                    out.append(f"expected verdict {v} for an option given now: {oid} offered in {place}")
                elif v == "contraindicated":
                    out.append(f"expected verdict contraindicated for a later option: {oid} offered in {place}")
    # the working plan's "now" is today: its options carry today's verdicts, and a plan that says nothing fits
    # today does not stand beside an option preferred today. Accepted exception: a preferred clinical trial
    # (enrolment is offered beside any plan) and palliative radiotherapy of a site (its own branch)
    steps = plan.get("steps") or []
    for s in steps:
        if s.get("when") != "now":
            continue
        for oid in s.get("options") or []:
            v = (options.get(oid) or {}).get("verdict")
            if v in _NEGATIVE:
                out.append(f"today's verdict {v} for an option given now: {oid} offered in the working plan step {s.get('step')} (now)")
    if steps and steps[0].get("when") == "now" and not steps[0].get("options"):
        preferred = [oid for oid, o in options.items() if o.get("verdict") == "preferred" and oid not in ("clinical_trial", "ebrt")]
        if preferred:
            out.append(f"an empty first step (no treatment fits today) while today's verdicts prefer {', '.join(preferred)}: "
                       "in the working plan step 1 (now)")
    return out


def red_lines(patient_doc: dict[str, Any], assessment: dict[str, Any]) -> list[str]:
    """Every red line the assessment crosses, each a sentence naming the patient's value, the
    offending option and where it appears; ``[]`` when it crosses none.

    Checked: the working plan's steps and today's positive verdicts against the document; each
    branch's steps against the document with that branch's ``if`` facts filled in (each way a
    merged branch is reached, where it is consistent with the document); the plan against itself
    and today's verdicts (:func:`_plan_lines`). Written independently of the knowledge base (see
    the comments above :func:`_check_lines`)."""
    classification = assessment.get("classification") or {}
    plan = assessment.get("plan") or {}
    out: list[str] = []
    offers = _step_offers(plan.get("steps") or [], "the working plan")
    for o in assessment.get("options") or []:
        if o.get("verdict") in _POSITIVE:
            offers.append(_Offer(o["id"], f"today's verdicts ({o['verdict']})", "verdict", True,
                                 o.get("intent"), o["verdict"]))
    out += _check_lines(_Facts(patient_doc, classification), offers)
    for k, branch in enumerate(plan.get("branches") or []):
        for cond in branch.get("if") or []:
            filled = _consistent_with(patient_doc, cond)
            if filled is None:
                continue
            label = f"{cond.get('field')} = {cond.get('value')!r}"
            if cond.get("with"):
                label += " with " + ", ".join(f"{a} = {b!r}" for a, b in cond["with"].items())
            offers = _step_offers(branch.get("steps") or [], f"branch {k} (if {label})")
            out += _check_lines(_Facts(filled, classification), offers)
    out += _plan_lines(plan, {o["id"]: o for o in assessment.get("options") or [] if "id" in o})
    return list(dict.fromkeys(out))

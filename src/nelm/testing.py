"""Public testing helpers: patient factories and hypothesis strategies.

Like scikit-survival's testing module, this is importable by anyone extending the
knowledge base: write a rule, then check it with the same patients the project uses.
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

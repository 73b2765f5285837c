"""Supply chain and static checks: pip-audit finds no known vulnerability in what nelm installs,
bandit finds nothing in src/ beyond the exceptions justified in bandit.yaml and below.

pip-audit asks a vulnerability service on the internet (PyPI's JSON API). Where that
service cannot be reached or answers for none of the packages (an offline machine, a
mirror without the per-release API), the audit test is skipped and says why: it cannot
tell clean from unknown there. Bandit runs offline and always.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AUDIT_SECONDS = 300
BANDIT_SECONDS = 300

# Findings on lines in files whose owners have yet to mark them `# nosec BXXX - reason`:
# (file, test id, text of the flagged statement) -> why it is not a vulnerability. An entry
# covers only a statement containing that text; once the line carries its `# nosec`,
# delete the entry.
REVIEWED: dict[tuple[str, str, str], str] = {
    ("src/nelm/yamlio.py", "B506", "Loader=_Loader"):
        "_Loader is yaml.CSafeLoader or yaml.SafeLoader; bandit recognises a safe loader only by that literal name",
    ("src/nelm/inputgate.py", "B506", "yaml.load(text, Loader="):
        "the loader is Yaml12Loader (or its libyaml twin): BaseConstructor with constructors for the YAML 1.2 "
        "core tags only, every other tag refused; it builds plain data and never instantiates objects",
    ("src/nelm/report/__init__.py", "B704", "Markup(charts.inline_svg(arms))"):
        "the SVG is drawn by matplotlib (which escapes its text) from the knowledge base's published curves, "
        "and its one added attribute is escaped by charts._attr; no patient text goes in",
    ("src/nelm/report/__init__.py", "B704", "Markup('<img class=\"chart-img\""):
        "Markup.format escapes alt; the other value is base64 text, which has no markup characters",
    ("src/nelm/web/pages.py", "B704", "Markup('<img class=\"chart-img\""):
        "Markup.format escapes alt; the other value is base64 text of the chart, which has no markup characters",
    ("src/nelm/report/__init__.py", "B704", "Markup((HERE / \"report.css\")"):
        "the report's own stylesheet, shipped inside the package",
    ("src/nelm/web/serve.py", "B105", 'TOKEN_ENV = "NELM_API_TOKEN"'):
        "the name of the environment variable that holds the token, not a token",
    ("src/nelm/store/migrations/versions/0002_hash_chains.py", "B608", "CREATE FUNCTION nelm_chain_append()"):
        "DDL; the only value put in is the module constant _GENESIS",
    ("src/nelm/store/migrations/versions/0002_hash_chains.py", "B608", "CREATE TRIGGER {table}_no_replace"):
        "DDL; table names come from the module constant _CHAINED",
    ("src/nelm/store/migrations/versions/0002_hash_chains.py", "B608", "CREATE TRIGGER {table}_chain_order"):
        "DDL; table names come from the module constant _CHAINED",
    ("src/nelm/store/migrations/versions/0002_hash_chains.py", "B608", "CREATE TRIGGER {table}_chain_link"):
        "DDL; table names come from the module constant _CHAINED and _GENESIS",
}


# ------------------------------------------------------------------ pip-audit

def installed_requirements(root: str = "nelm", extras: frozenset[str] = frozenset({"test", "spark"})) -> list[str]:
    """``name==version`` for every installed distribution nelm (with ``extras``) depends on, transitively.

    These are exactly the releases `make test` / `pip install -e .[test,spark]` put in .venv
    (an extra that is not installed is skipped),
    without the venv's own seed packages, which nelm does not use.
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    done: dict[str, set[str]] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        if key in done and wanted <= done[key]:
            continue
        done.setdefault(key, set()).update(wanted)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a dependency for another platform or Python, not installed here
        if key != canonicalize_name(root):
            pins[key] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (wanted or {""})):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def test_the_dependency_closure_is_what_nelm_declares():
    pins = {line.split("==")[0] for line in installed_requirements()}
    assert {"fastapi", "starlette", "uvicorn", "sqlalchemy", "pydantic", "jinja2", "pytest"} <= pins
    assert "nelm" not in pins and "setuptools" not in pins


def test_pip_audit_finds_no_known_vulnerability(tmp_path):
    pytest.importorskip("pip_audit", reason="pip-audit is not installed (pip install -e '.[test]')")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(installed_requirements()) + "\n")
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pip_audit", "--requirement", str(requirements), "--no-deps", "--disable-pip",
             "--format", "json", "--progress-spinner", "off", "--timeout", "30"],
            capture_output=True, text=True, timeout=AUDIT_SECONDS, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip-audit: the vulnerability service did not answer within {AUDIT_SECONDS} s")
    if run.returncode not in (0, 1) or not run.stdout.strip():
        if re.search(r"ConnectionError|NameResolution|Max retries|timed out|Temporary failure", run.stderr):
            pytest.skip("pip-audit cannot reach the vulnerability service from this machine: "
                        + run.stderr.strip().splitlines()[-1][:200])
        pytest.fail(f"pip-audit failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    report = json.loads(run.stdout)["dependencies"]
    audited = [d for d in report if "skip_reason" not in d]
    skipped = [d for d in report if "skip_reason" in d]
    if not audited:
        reason = skipped[0]["skip_reason"] if skipped else "nothing audited"
        pytest.skip(f"pip-audit: the vulnerability service (PyPI's JSON API) answered for none of the "
                    f"{len(report)} packages from this machine, e.g. {reason!r}")
    vulnerable = [f"{d['name']} {d['version']}: " + ", ".join(v["id"] + (f" (fixed in {', '.join(v['fix_versions'])})"
                                                                           if v.get("fix_versions") else "")
                                                                for v in d["vulns"])
                  for d in audited if d["vulns"]]
    assert not vulnerable, "known vulnerabilities in installed dependencies:\n" + "\n".join(vulnerable)
    assert not skipped, "pip-audit could not audit: " + ", ".join(f"{d['name']} ({d['skip_reason']})" for d in skipped)


# ------------------------------------------------------------------ bandit

def _statement(finding: dict) -> str:
    lines = (ROOT / finding["filename"]).read_text(encoding="utf-8").splitlines()
    first, last = min(finding["line_range"]), max(finding["line_range"])
    return "\n".join(lines[first - 1:last])


def test_bandit_finds_nothing_unreviewed():
    pytest.importorskip("bandit", reason="bandit is not installed (pip install -e '.[test]')")
    run = subprocess.run([sys.executable, "-m", "bandit", "-c", "bandit.yaml", "-r", "src", "-f", "json", "-q"],
                         capture_output=True, text=True, timeout=BANDIT_SECONDS, cwd=ROOT)
    assert run.stdout.strip(), f"bandit printed nothing (exit {run.returncode}):\n{run.stderr[-3000:]}"
    report = json.loads(run.stdout)
    assert not report["errors"], f"bandit could not scan: {report['errors']}"
    unreviewed = []
    for finding in report["results"]:
        statement = _statement(finding)
        if not any(path == finding["filename"] and test == finding["test_id"] and text in statement
                   for path, test, text in REVIEWED):
            unreviewed.append(f"{finding['filename']}:{finding['line_number']} {finding['test_id']} "
                              f"{finding['issue_text']}")
    assert not unreviewed, ("bandit findings: fix them, or mark the line `# nosec BXXX - why` "
                            "(see bandit.yaml):\n" + "\n".join(unreviewed))


def test_every_bandit_exception_says_why():
    """Each test bandit.yaml skips has a comment above it; each `# nosec` names its test and a reason."""
    config = (ROOT / "bandit.yaml").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(config):
        if re.match(r"\s*-\s*B\d{3}\b", line):
            assert config[i - 1].strip().startswith("#"), f"bandit.yaml skips {line.strip()} without a reason"
    bare = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = re.search(r"#\s*nosec\b(.*)", line)
            if m and not re.match(r"\s*:?\s*B\d{3}(\s*,\s*B\d{3})*\s*[-:–—]\s*\w", m.group(1)):
                bare.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bare, "`# nosec` needs the test id and a reason, e.g. `# nosec B506 - a safe loader`:\n" + "\n".join(bare)
    assert all(why.strip() for why in REVIEWED.values())

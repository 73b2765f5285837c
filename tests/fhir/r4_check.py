"""Every R4 invariant that applies to a resource, read from the official StructureDefinitions.

``data/r4_definitions.json`` (made by ``data/extract_r4.py`` from HL7's R4 4.0.1 package) has
each element of the resources nelm emits and of every type reachable from them, with its
``constraint`` entries. :func:`violations` walks a resource (contained resources and Bundle
entries too) knowing each node's type from those definitions, and evaluates on each node every
constraint of its element and of its type, with fhirpathpy. Nothing is hand-picked: a
constraint that exists in the definitions is evaluated, or is listed in :data:`PYTHON` (checked
here in Python, with the reason) — :func:`constraint_keys` lets a test see that no key slips
through. Rewrites that keep the meaning, because fhirpathpy lacks a function, are in
:data:`REWRITES`.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

from fhirpathpy import compile as fhirpath_compile
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

DEFINITIONS = json.loads((Path(__file__).parent / "data" / "r4_definitions.json").read_text(encoding="utf-8"))
TYPES: dict[str, dict[str, Any]] = DEFINITIONS["types"]
ELEMENTS: dict[str, dict[str, dict[str, Any]]] = {t: {e["path"]: e for e in v["elements"]} for t, v in TYPES.items()}
XHTML = "{http://www.w3.org/1999/xhtml}"
# txt-1's rule: basic HTML formatting elements only (https://hl7.org/fhir/R4/narrative.html#xhtml)
ALLOWED_TAGS = {"a", "abbr", "acronym", "b", "big", "blockquote", "br", "caption", "cite", "code", "col", "colgroup",
                "dd", "dfn", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol",
                "p", "pre", "q", "samp", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
                "th", "thead", "tr", "tt", "ul", "var"}


def _txt_1(div: Any) -> bool:
    """txt-1: the div is XHTML with only basic formatting, no scripts, forms, event attributes."""
    try:
        root = ET.fromstring(div)
    except ET.ParseError:
        return False
    if root.tag != XHTML + "div":
        return False
    for el in root.iter():
        if not el.tag.startswith(XHTML) or el.tag.removeprefix(XHTML) not in ALLOWED_TAGS:
            return False
        if any(a.lower().startswith("on") or a in ("style",) and "url(" in el.attrib[a] for a in el.attrib):
            return False
    return True


def _txt_2(div: Any) -> bool:
    """txt-2: the narrative has some non-whitespace content."""
    try:
        return bool("".join(ET.fromstring(div).itertext()).strip())
    except ET.ParseError:
        return False


# Constraints whose FHIRPath fhirpathpy cannot run, checked here in Python instead (why: the
# function it lacks). The expression each replaces is the one in r4_definitions.json.
PYTHON: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "txt-1": ("htmlChecks() is not implemented by fhirpathpy", _txt_1),
    "txt-2": ("htmlChecks() is not implemented by fhirpathpy", _txt_2),
}
# Rewrites keeping the meaning on the JSON nelm writes (no primitive carries an extension, `_x`,
# which the walker asserts), each with why.
REWRITES = [
    (r"\.trace\('[^']*'(, [^)]*)?\)", "", "trace() only logs"),
    (r"\.as\((\w+)\)", r".ofType(\1)", "fhirpathpy refuses as() on a collection; the R4 constraints use it as a filter"),
    (r"(\b[\w.`]+)\.hasValue\(\)", r"\1.exists()", "hasValue() is not implemented by fhirpathpy; on JSON without "
                                                    "primitive extensions a primitive has a value exactly when it exists"),
    (r"^hasValue\(\) or ", "", "ele-1 on a complex node (a JSON object): it is not a primitive, so hasValue() is false"),
]
REFS = ("%resource.descendants().reference | %resource.descendants().ofType(canonical) | "
        "%resource.descendants().ofType(uri) | %resource.descendants().ofType(url)")


def rewrite(expression: str) -> str:
    for pattern, replacement, _ in REWRITES:
        expression = re.sub(pattern, replacement, expression)
    # dom-3 asks for every reference once per contained resource: computed once per resource (%refs)
    return expression.replace(f"({REFS})", "%refs")


@lru_cache(maxsize=None)
def compiled(expression: str) -> Callable[..., list]:
    return fhirpath_compile(rewrite(expression), models["r4"])


def constraint_keys() -> dict[str, list[str]]:
    """Every constraint key in the definitions → the element paths it is on."""
    out: dict[str, list[str]] = {}
    for t in TYPES.values():
        for e in t["elements"]:
            for c in e.get("constraints", []):
                out.setdefault(c["key"], []).append(e["path"])
    return out


# ------------------------------------------------------------------ the typed walk

def _element(type_name: str, path: str) -> dict[str, Any] | None:
    return ELEMENTS.get(type_name, {}).get(path)


def _child(type_name: str, path: str, key: str) -> tuple[dict[str, Any], str | None] | None:
    """The element definition of ``key`` under ``path`` and the type code a choice key names."""
    e = _element(type_name, f"{path}.{key}")
    if e is not None:
        return e, None
    for candidate in ELEMENTS.get(type_name, {}).values():
        p = candidate["path"]
        if p.endswith("[x]") and p.rsplit(".", 1)[0] == path:
            stem = p.rsplit(".", 1)[1][:-3]
            if key.startswith(stem) and key != stem:
                suffix = key[len(stem):]
                for code in candidate.get("types", []):
                    if code.lower() == suffix.lower():
                        return candidate, code
    return None


def walk(node: Any, type_name: str, path: str, resource: dict, root: dict, where: str,
         problems: list[str]) -> Iterator[tuple[Any, str, str, dict, dict, str, list[dict]]]:
    """(node, its type, its element path, %resource, %rootResource, where, constraints) for every
    node; ``problems`` gets every key the definitions do not know (a walk that lost its way)."""
    element = _element(type_name, path) or {}
    constraints = list(element.get("constraints", []))
    ref = element.get("contentReference")
    if ref:  # RequestGroup.action.action is RequestGroup.action again
        path = ref.lstrip("#")
        constraints += _element(type_name, path).get("constraints", [])  # type: ignore[union-attr]
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk_one(item, type_name, path, resource, root, f"{where}[{i}]", constraints, problems)
        return
    yield from _walk_one(node, type_name, path, resource, root, where, constraints, problems)


def _walk_one(node: Any, type_name: str, path: str, resource: dict, root: dict, where: str,
              constraints: list[dict], problems: list[str]) -> Iterator[tuple[Any, str, str, dict, dict, str, list[dict]]]:
    if isinstance(node, dict) and "resourceType" in node and (path == type_name or type_name == "Resource"
                                                             or path.endswith(("contained", "resource"))):
        rtype = node["resourceType"]
        if rtype not in TYPES:
            # a record the EHR sent (a hook's Bundle carries them): not nelm's to emit, not checked
            problems.append(f"{where}: resource type {rtype} has no definitions here (FOREIGN)")
            return
        own = [c for c in _element(rtype, rtype).get("constraints", [])]  # type: ignore[union-attr]
        if root is not node:
            # DomainResource.text (R4): "Contained resources do not have narrative. Resources that
            # are not contained SHOULD have a narrative": dom-6 is for resources not contained
            own = [c for c in own if c["key"] != "dom-6"]
        yield node, rtype, rtype, node, root, where, own
        for key, value in node.items():
            if key == "resourceType":
                continue
            yield from _children(value, rtype, rtype, key, node, root, where, problems)
        return
    yield node, type_name, path, resource, root, where, constraints
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        yield from _children(value, type_name, path, key, resource, root, where, problems)


def _children(value: Any, type_name: str, path: str, key: str, resource: dict, root: dict, where: str,
              problems: list[str]) -> Iterator[tuple[Any, str, str, dict, dict, str, list[dict]]]:
    if key.startswith("_"):
        problems.append(f"{where}.{key}: a primitive extension (the rewrites assume none)")
        return
    found = _child(type_name, path, key)
    if found is None:
        problems.append(f"{where}.{key}: not an element of {path}")
        return
    element, chosen = found
    codes = [chosen] if chosen else element.get("types", [])
    child_where = f"{where}.{key}"
    code = codes[0] if len(codes) == 1 else None
    if code in ("Resource",):  # contained, Bundle.entry.resource, Parameters.parameter.resource
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            w = f"{child_where}[{i}]" if isinstance(value, list) else child_where
            sub_root = root if key == "contained" else item
            yield from _walk_one(item, "Resource", f"{path}.{key}", item, sub_root, w, [], problems)
        return
    if code and code[0].isupper() and code not in ("BackboneElement", "Element") and code in TYPES:
        # a datatype: its element here (ele-1) and its own definition (e.g. Reference: ref-1)
        here = list(element.get("constraints", []))
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            w = f"{child_where}[{i}]" if isinstance(value, list) else child_where
            root_constraints = _element(code, code).get("constraints", [])  # type: ignore[union-attr]
            yield item, code, code, resource, root, w, here + root_constraints
            if isinstance(item, dict):
                for k, v in item.items():
                    yield from _children(v, code, code, k, resource, root, w, problems)
        return
    # a primitive, or a backbone element of this definition
    yield from walk(value, type_name, element["path"], resource, root, child_where, problems)


# ------------------------------------------------------------------ evaluation

def violations(resource: dict, severities: tuple[str, ...] = ("error", "warning"), foreign: bool = False) -> list[str]:
    """Every constraint ``resource`` breaks, with where; and any key the walk did not know.
    ``foreign``: resources of types outside the definitions (records an EHR sent, inside a
    Bundle) are passed over instead of reported."""
    problems: list[str] = []
    out: list[str] = []
    refs: dict[int, list] = {}
    for node, type_name, path, res, root, where, constraints in walk(resource, resource["resourceType"],
                                                                     resource["resourceType"], resource, resource,
                                                                     resource["resourceType"], problems):
        seen = set()
        for c in constraints:
            if c["key"] in seen or c["severity"] not in severities:
                continue
            seen.add(c["key"])
            if not _holds(c, node, path, res, root, refs):
                out.append(f"{c['key']} at {where}: {c['human']}")
    if foreign:
        problems = [p for p in problems if not p.endswith("(FOREIGN)")]
    return problems + out


def _holds(c: dict, node: Any, path: str, resource: dict, root: dict, refs: dict[int, list]) -> bool:
    key = c["key"]
    if key in PYTHON:
        return PYTHON[key][1](node)
    if not isinstance(node, dict):
        # a primitive: ele-1 is that it has a value (nelm writes no primitive extensions)
        if key == "ele-1":
            return node not in (None, "", [], {})
        return True
    if id(resource) not in refs:
        refs[id(resource)] = compiled(REFS)(resource, {"resource": resource, "rootResource": root})
    env = {"resource": resource, "rootResource": root, "refs": refs[id(resource)], "ucum": "http://unitsofmeasure.org"}
    # typed: a datatype node by its type name, a backbone element by its path (choice types such
    # as Extension.value[x] resolve only so); a resource by its resourceType
    target = node if "resourceType" in node else ResourceNode.create_node(node, path)
    return compiled(c["expression"])(target, env) == [True]

"""The input gate: untrusted bytes or text in, a plain JSON-like document out.

Every way a patient document enters nelm (the command line, the REST API, the web form
and, later, FHIR) passes through here before the patient model sees it. What comes out
is made of ``dict`` (text keys), ``list``, ``str``, ``int``, finite ``float``, ``bool``
and ``None`` only, within the limits below; anything else is refused with
:class:`nelm.patient.InvalidPatient`, each problem as (dotted field, message), so the
CLI exits 2 and the API answers 422 — never a crash, a 500 or exit 1.

The refusals, and why each is here:

* size, nesting depth and number length are bounded *before* the parsers run, because
  the parsers fail on them in ways that are not refusals: Python's ``int`` refuses to
  read more than 4,300 digits (ValueError), ``json`` and PyYAML recurse once per level
  (RecursionError at some hundreds of levels), and an integer too large for a 64-bit
  column overflows Polars and the database;
* numbers must be finite: no clinical value is infinite, and neither strict JSON nor
  PostgreSQL's jsonb can store NaN or Infinity (JSON's ``Infinity``, ``1e400``, YAML's
  ``.inf`` and ``.nan`` are all refused by path);
* text must be valid Unicode without NUL: a lone surrogate (``"\\ud800"``) cannot be
  encoded as UTF-8 (so it could be neither printed nor stored) and PostgreSQL's text and
  jsonb cannot hold U+0000;
* a key that appears twice is refused (one of the values would be silently lost), found
  with a set in linear time;
* YAML is read as YAML 1.2's core schema: only ``true``/``false`` are booleans (YAML 1.1
  also read ``yes``, ``no``, ``on``, ``off``, ``y``, ``n`` — "yes" is not true in the
  contract), ``012`` is twelve, dates stay text, and anchors/aliases, merge keys and tags
  other than the core ones are refused (aliases can expand a small file exponentially);
* a UTF-8 byte-order mark at the start is tolerated (some Windows editors write one).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import BaseConstructor, ConstructorError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

# ----------------------------------------------------------------------------- limits

# The web app's request-body cap (web/security.py MAX_BODY_BYTES is the same figure): a
# patient document is about 2 KiB, so 256 KiB leaves room for any real one, and the CLI
# now refuses what the API refuses instead of reading a file of any size into memory.
MAX_DOCUMENT_BYTES = 256 * 1024
# The patient document is 3 levels deep (prior_therapies → row → field); 32 leaves room
# for other documents through the same gate (FHIR resources nest about 10 deep) while
# staying far below where json's and PyYAML's recursion would fail (hundreds of levels).
MAX_DEPTH = 32
# Characters of one number literal. No clinical value needs more than a handful of
# digits and a float holds 17 significant ones; 100 is well below Python's 4,300-digit
# int conversion limit, and the model's bounds then refuse what is too large for a
# Polars column with a proper range message.
MAX_NUMBER_CHARS = 100
# Integers above this magnitude are refused even when built in Python (the web form,
# FHIR mapping), not read from text: the same 100-digit bound.
MAX_INT_ABS = 10**MAX_NUMBER_CHARS
# One text value: the only free text in a patient document is its label (``id``); 10,000
# characters is generous for that and keeps a single value from filling logs and
# error messages.
MAX_STRING_CHARS = 10_000
# One field name: the longest contract field name has 40 characters.
MAX_KEY_CHARS = 200
# Problems reported for one document: enough to fix a real document in one go, and a
# crafted one (60,000 bad list items) does not produce a 60,000-line answer.
MAX_PROBLEMS = 100

_BOM = "\ufeff"
# NUL and the UTF-16 surrogate range: text that PostgreSQL or UTF-8 cannot hold
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
# what may not appear in a field name: also the other C0/C1 control characters, which
# would be written into a terminal or a log as they are when the field is named
_BAD_KEY = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _invalid(problems: list[tuple[str, str]]) -> Exception:
    from .patient import InvalidPatient  # the patient module imports this one

    return InvalidPatient(problems)


class _Refused:
    """A value the parsers could not represent faithfully (an over-long or infinite
    number); it stands in the document until :func:`check_document` names its path."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<refused: {self.message}>"


class _NonTextKey(str):
    """A YAML mapping key that was not text (``1:``, ``null:``, ``[a, b]:``)."""

    __slots__ = ()


class _Duplicated(dict):  # type: ignore[type-arg]
    """A mapping whose source repeated keys; ``duplicates`` lists them once each."""

    __slots__ = ("duplicates",)

    def __init__(self, items: Any, duplicates: list[Any]):
        super().__init__(items)
        self.duplicates = duplicates


def _with_unique_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    data = dict(pairs)
    if len(data) == len(pairs):
        return data
    seen: set[Any] = set()
    dups: dict[Any, None] = {}  # ordered, each once
    for k, _ in pairs:
        if k in seen:
            dups[k] = None
        seen.add(k)
    return _Duplicated(data, list(dups))


def _number_literal(text: str, integer: bool) -> _Refused | None:
    if len(text) <= MAX_NUMBER_CHARS:
        return None
    if integer:
        return _Refused(f"integer of {len(text.lstrip('+-'))} digits; at most {MAX_NUMBER_CHARS} digits are accepted")
    return _Refused(f"number written with {len(text)} characters; at most {MAX_NUMBER_CHARS} are accepted")


def _shown(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# ----------------------------------------------------------------------------- paths

def _component(part: Any) -> str:
    """One component of a dotted path, safe to print: bad characters escaped, long names cut."""
    if isinstance(part, int) and not isinstance(part, bool):
        return str(part)
    text = _BAD_KEY.sub(lambda m: f"\\u{ord(m.group()):04x}", str(part))
    return _shown(text, MAX_KEY_CHARS)


def _dotted(path: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(_component(p) for p in path)


def _holder(path: list[Any]) -> list[Any]:
    """The field to name for a value nested too deeply: the path cut before the first
    list that sits directly in a list (``{"id": [[[…]]]}`` is a problem of ``id``, not of
    ``id.0.0.0.…``); paths through objects are kept whole."""
    for i in range(1, len(path)):
        if isinstance(path[i], int) and isinstance(path[i - 1], int):
            return path[: i - 1]
    return path


def _too_deep(path: list[Any]) -> tuple[str, str]:
    return (_dotted(_holder(path)),
            f"nested more than {MAX_DEPTH} levels deep (lists and objects inside one another); "
            "a patient document is at most 3 levels deep")


# ----------------------------------------------------------------------------- the walk

def check_document(data: Any) -> None:
    """Refuse what no patient document may hold, every problem by its dotted path.

    Used on parsed text (:func:`parse_text`) and on documents built in Python (the web
    form, a FHIR mapping): the same limits hold whatever the way in.
    """
    problems = list(_walk(data))
    if problems:
        raise _invalid(problems)


def _walk(root: Any) -> Iterator[tuple[str, str]]:
    # explicit stack: a crafted document cannot exhaust Python's recursion
    stack: list[tuple[tuple[Any, ...], Any]] = [((), root)]
    found = 0
    while stack:
        if found >= MAX_PROBLEMS:
            yield ("", f"more than {MAX_PROBLEMS} problems; the rest are not listed")
            return
        path, node = stack.pop()
        message = _node_problem(node)
        if message is None and isinstance(node, (dict, list)) and len(path) >= MAX_DEPTH:
            found += 1
            yield _too_deep(list(path))
        elif message is not None:
            found += 1
            yield (_dotted(path), message)
        elif isinstance(node, dict):
            for k in getattr(node, "duplicates", ()):
                found += 1
                yield (_dotted((*path, k)), "appears more than once; which value was meant is unclear, give it once")
            children = []
            for k, v in node.items():
                key_message = _key_problem(k)
                if key_message is not None:
                    found += 1
                    yield (_dotted((*path, k)), key_message)
                else:
                    children.append(((*path, k), v))
            stack.extend(reversed(children))  # popped in document order
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(node))))


def _key_problem(key: Any) -> str | None:
    if isinstance(key, _NonTextKey) or not isinstance(key, str):
        return f"a field name must be text (got {_shown(str(key))})"
    if len(key) > MAX_KEY_CHARS:
        return f"field name of {len(key)} characters; no field name is longer than {MAX_KEY_CHARS}"
    if _BAD_KEY.search(key):
        return "the field name contains a control character, NUL or invalid Unicode (a lone surrogate)"
    return None


def _node_problem(node: Any) -> str | None:
    if node is None or isinstance(node, (bool, dict, list)):
        return None
    if isinstance(node, _Refused):
        return node.message
    if isinstance(node, str):
        if len(node) > MAX_STRING_CHARS:
            return f"text of {len(node)} characters; at most {MAX_STRING_CHARS} are accepted"
        bad = _BAD_TEXT.search(node)
        if bad is None:
            return None
        if bad.group() == "\x00":
            return "contains a NUL character (U+0000), which text may not hold"
        return f"not valid Unicode: contains a lone surrogate (U+{ord(bad.group()):04X} at character {bad.start() + 1})"
    if isinstance(node, int):
        return None if -MAX_INT_ABS < node < MAX_INT_ABS else f"integer of more than {MAX_NUMBER_CHARS} digits"
    if isinstance(node, float):
        return None if math.isfinite(node) else f"not a finite number (got {node!r})"
    return f"not a JSON value (got {type(node).__name__})"


# ----------------------------------------------------------------------------- bytes and text

def decode(raw: bytes, what: str = "the document") -> str:
    """UTF-8 text from bytes (a leading byte-order mark dropped), size-checked first."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _invalid([("", _too_large(len(raw), what))])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid([("", f"{what} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})")]) from None
    return text.removeprefix(_BOM)


def _too_large(n: int | None, what: str) -> str:
    size = f" ({n} bytes)" if n else ""
    return f"{what} is larger than {MAX_DOCUMENT_BYTES // 1024} KiB{size}; a patient document is a few KiB"


def read_file(path: str | Path) -> tuple[str, str | None]:
    """The text of a document file (at most :data:`MAX_DOCUMENT_BYTES`) and its format
    by suffix (``json``, ``yaml`` or None to tell by content)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_DOCUMENT_BYTES + 1)  # never more: a device or a huge file stops here
    except OSError as exc:
        raise _invalid([("", f"cannot read {path}: {exc.strerror or exc}")]) from None
    if len(raw) > MAX_DOCUMENT_BYTES:  # the file's size when it has one (not a device or a pipe)
        raise _invalid([("", _too_large(_size_of(path), str(path)))])
    fmt = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(path.suffix.lower())
    return decode(raw, str(path)), fmt


def _size_of(path: Path) -> int | None:
    try:
        size = path.stat().st_size
    except OSError:
        return None
    return size if size > MAX_DOCUMENT_BYTES else None


def parse_text(text: str, fmt: str | None = None) -> Any:
    """Parse JSON or YAML text into a checked JSON-like document.

    ``fmt`` is ``"json"``, ``"yaml"`` or None (JSON when the text starts with ``{`` or
    ``[``, else YAML). Raises InvalidPatient for text that is malformed or breaks a limit.
    """
    text = text.removeprefix(_BOM)
    size = len(text) if len(text) * 4 <= MAX_DOCUMENT_BYTES else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise _invalid([("", _too_large(size, "the document"))])
    if fmt == "json" or (fmt is None and text.lstrip().startswith(("{", "["))):
        data = _parse_json(text)
    else:
        data = _parse_yaml(text)
    check_document(data)
    return data


# ----------------------------------------------------------------------------- JSON

# a JSON string (closing quote optional, so an unterminated one ends the scan in linear
# time) or one structural character
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{},:]', re.S)


def _json_depth_problem(text: str) -> tuple[str, str] | None:
    """Where the text nests deeper than MAX_DEPTH, found without recursion.

    Brackets inside strings do not count. On malformed text the count may be off, but
    never below the depth json would reach before it stops at the error.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    frames: list[list[Any]] = []  # [opener, current key or index, expecting a key]
    for m in _JSON_TOKEN.finditer(text):
        tok = m.group()
        if tok in ("[", "{"):
            if len(frames) >= MAX_DEPTH:
                return _too_deep([f[1] for f in frames])
            frames.append([tok, 0 if tok == "[" else None, tok == "{"])
        elif tok in ("]", "}"):
            if frames:
                frames.pop()
        elif tok == ",":
            if frames and frames[-1][0] == "[":
                frames[-1][1] += 1
            elif frames:
                frames[-1][2] = True
        elif tok.startswith('"') and frames and frames[-1][0] == "{" and frames[-1][2]:
            try:
                frames[-1][1] = json.loads(tok)
            except ValueError:
                frames[-1][1] = tok.strip('"')
            frames[-1][2] = False
    return None


def _json_int(text: str) -> int | _Refused:
    return _number_literal(text, True) or int(text)


def _json_float(text: str) -> float | _Refused:
    refused = _number_literal(text, False)
    if refused is not None:
        return refused
    value = float(text)
    return value if math.isfinite(value) else _Refused(f"not a finite number (got {text})")


def _json_constant(name: str) -> _Refused:
    return _Refused(f"not a finite number (got {name}); JSON has no infinite or undefined numbers")


def _parse_json(text: str) -> Any:
    deep = _json_depth_problem(text)
    if deep is not None:
        raise _invalid([deep])
    try:
        return json.loads(text, object_pairs_hook=_with_unique_keys, parse_int=_json_int,
                          parse_float=_json_float, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise _invalid([("", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]) from None
    except RecursionError:  # pragma: no cover - the depth check runs first; never a crash
        raise _invalid([("", f"nested more than {MAX_DEPTH} levels deep")]) from None


# ----------------------------------------------------------------------------- YAML 1.2

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution): the only plain
# scalars that are not text. The constructors hold explicit tags (!!bool yes) to them too.
_CORE_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_CORE_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_CORE_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_CORE_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                         r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")


class _CoreResolver(BaseResolver):
    """YAML 1.2 core schema: what plain scalars mean (nothing else is resolved)."""


_CoreResolver.add_implicit_resolver("tag:yaml.org,2002:null", _CORE_NULL, ["~", "n", "N", ""])
_CoreResolver.add_implicit_resolver("tag:yaml.org,2002:bool", _CORE_BOOL, list("tTfF"))
_CoreResolver.add_implicit_resolver("tag:yaml.org,2002:int", _CORE_INT, list("-+0123456789"))  # before float
_CoreResolver.add_implicit_resolver("tag:yaml.org,2002:float", _CORE_FLOAT, list("-+0123456789."))


class _CoreConstructor(BaseConstructor):
    """Builds only str, int, float, bool, None, list and dict (YAML 1.2 core tags)."""

    def construct_core_map(self, node: Any) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, f"expected a mapping, found {node.id}", node.start_mark)
        pairs = []
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str) or isinstance(key_node, (MappingNode, SequenceNode)):
                key = _NonTextKey(key_node.value if isinstance(key_node, ScalarNode) else f"<{key_node.id}>")
            pairs.append((key, self.construct_object(value_node, deep=True)))
        return _with_unique_keys(pairs)

    def construct_core_seq(self, node: Any) -> list[Any]:
        if not isinstance(node, SequenceNode):
            raise ConstructorError(None, None, f"expected a sequence, found {node.id}", node.start_mark)
        return [self.construct_object(child, deep=True) for child in node.value]

    def construct_core_str(self, node: Any) -> str:
        return str(self.construct_scalar(node))

    def _core_scalar(self, node: Any, pattern: re.Pattern[str], what: str) -> str:
        text = str(self.construct_scalar(node))
        if pattern.match(text) is None:  # only reached by an explicit tag: !!bool yes, !!int 1_000
            raise ConstructorError(None, None, f"{_shown(text)!r} is not {what} in YAML 1.2", node.start_mark)
        return text

    def construct_core_null(self, node: Any) -> None:
        self._core_scalar(node, _CORE_NULL, "null")
        return None

    def construct_core_bool(self, node: Any) -> bool:
        return self._core_scalar(node, _CORE_BOOL, "true or false").lower() == "true"

    def construct_core_int(self, node: Any) -> int | _Refused:
        text = str(self.construct_scalar(node))
        refused = _number_literal(text, True)
        if refused is not None:
            return refused
        text = self._core_scalar(node, _CORE_INT, "an integer")
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)

    def construct_core_float(self, node: Any) -> float | _Refused:
        text = str(self.construct_scalar(node))
        refused = _number_literal(text, False)
        if refused is not None:
            return refused
        text = self._core_scalar(node, _CORE_FLOAT, "a number")
        if text.lower().lstrip("+-") in (".inf", ".nan"):
            return _Refused(f"not a finite number (got {text})")
        value = float(text)
        return value if math.isfinite(value) else _Refused(f"not a finite number (got {text})")

    def construct_other(self, node: Any) -> Any:
        raise ConstructorError(None, None, f"the tag {_shown(str(node.tag))!r} is not accepted in a patient document "
                                           "(only plain YAML: text, numbers, true/false, null, lists, mappings)",
                               node.start_mark)


for _tag, _fn in (("str", _CoreConstructor.construct_core_str), ("null", _CoreConstructor.construct_core_null),
                  ("bool", _CoreConstructor.construct_core_bool), ("int", _CoreConstructor.construct_core_int),
                  ("float", _CoreConstructor.construct_core_float), ("seq", _CoreConstructor.construct_core_seq),
                  ("map", _CoreConstructor.construct_core_map)):
    _CoreConstructor.add_constructor(f"tag:yaml.org,2002:{_tag}", _fn)
_CoreConstructor.add_constructor(None, _CoreConstructor.construct_other)  # type: ignore[arg-type]


class Yaml12Loader(Reader, Scanner, Parser, Composer, _CoreConstructor, _CoreResolver):
    """A safe YAML loader for the YAML 1.2 core schema (see the module docstring)."""

    def __init__(self, stream: Any):
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _CoreConstructor.__init__(self)
        _CoreResolver.__init__(self)


try:  # libyaml's parser: the same documents, 5-20 times faster (256 KiB of YAML in 0.3 s, not 3 s)
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

if _CParser is not None:
    class CYaml12Loader(_CParser, _CoreConstructor, _CoreResolver):  # type: ignore[misc, valid-type]
        """:class:`Yaml12Loader` on libyaml. Its composer recurses once per level (in C),
        so it only ever sees text whose depth the event scan has checked first."""

        def __init__(self, stream: Any):
            _CParser.__init__(self, stream)
            _CoreConstructor.__init__(self)
            _CoreResolver.__init__(self)

    _YAML_LOADER: type = CYaml12Loader
else:  # pragma: no cover
    _YAML_LOADER = Yaml12Loader


def _yaml_structure_problem(text: str, loader: type) -> tuple[str, str] | None:
    """Depth and aliases, from the parser's event stream (iterative: no recursion)."""
    # frames: [kind, current key or index, next node is a key]
    frames: list[list[Any]] = []

    def done(key: Any = None) -> None:
        if not frames:
            return
        top = frames[-1]
        if top[0] == "seq":
            top[1] += 1
        elif top[2]:
            top[1], top[2] = key, False
        else:
            top[2] = True

    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            where = _dotted([f[1] for f in frames if not (f[0] == "map" and f[2])])
            return (where, f"YAML aliases (*{_shown(str(event.anchor))}) are not accepted in a patient document; "
                           "write the value out")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(frames) >= MAX_DEPTH:
                return _too_deep([f[1] for f in frames])
            frames.append(["map", None, True] if isinstance(event, yaml.MappingStartEvent) else ["seq", 0, False])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frames.pop()
            done("<complex key>")
        elif isinstance(event, yaml.ScalarEvent):
            done(event.value)
    return None


def _parse_yaml(text: str, loader: type | None = None) -> Any:
    loader = loader or _YAML_LOADER
    surrogate = _SURROGATE.search(text)
    if surrogate is not None:  # not Unicode; libyaml could not even be handed the text
        line = text.count("\n", 0, surrogate.start()) + 1
        raise _invalid([("", f"not valid Unicode: a lone surrogate (U+{ord(surrogate.group()):04X}) on line {line}")])
    try:
        problem = _yaml_structure_problem(text, loader)
        if problem is not None:
            raise _invalid([problem])
        return yaml.load(text, Loader=loader)  # noqa: S506 - builds plain data only
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1} column {where.column + 1}" if where else ""
        context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
        problem_text = " ".join((f"{context}, {problem}" if context and problem else problem or str(exc)).split())
        raise _invalid([("", f"not valid YAML: {problem_text}{at}")]) from None
    except RecursionError:  # pragma: no cover - the depth check runs first; never a crash
        raise _invalid([("", f"nested more than {MAX_DEPTH} levels deep")]) from None


# ----------------------------------------------------------------------------- request parameters

# The same gate for what arrives in a URL: every query and path parameter of the API
# and the pages is typed and bounded by these, so that no value reaches the case store
# that its columns or the calendar arithmetic cannot take.

# Case list pages: 1,000,000 pages of at most 100 cases is far beyond any case store,
# and keeps OFFSET ((page - 1) × page size) inside SQLite's and PostgreSQL's 64-bit range.
MAX_PAGE = 1_000_000
# Version numbers are INTEGER columns: 32-bit on PostgreSQL (SQLite's are 64-bit).
MAX_VERSION = 2**31 - 1
# "Cases with a version made that day": a case store's versions are made in the present.
# The bounds keep the day's start and end (local time zone, ± 14 hours) away from the
# ends of Python's calendar (year 1 and 9999), where they overflow.
MIN_DATE = _dt.date(1900, 1, 1)
MAX_DATE = _dt.date(9998, 12, 31)
# Search text: the patient label it searches is at most 200 characters.
MAX_SEARCH_CHARS = 200
# Case ids are the UUIDs the store made (lower case); anything else names no case and
# never reaches the database (PostgreSQL refuses NUL in text parameters with an error).
_CASE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A positive whole number written in ASCII digits, at most 10 of them ("²" or "١" are
# digits to str.isdigit and int(), not to a URL).
_WHOLE = re.compile(r"[0-9]{1,10}")


def is_case_id(text: str) -> bool:
    return _CASE_ID.fullmatch(text) is not None


def whole_number(text: str, maximum: int) -> int | None:
    """A URL's ``1``..``maximum`` as an int; None for anything else."""
    text = text.strip()
    if _WHOLE.fullmatch(text) is None:
        return None
    n = int(text)
    return n if 1 <= n <= maximum else None


def search_problem(text: str) -> str | None:
    """Why search text cannot be used, or None."""
    if len(text) > MAX_SEARCH_CHARS:
        return f"search text of {len(text)} characters; at most {MAX_SEARCH_CHARS} are accepted"
    if _BAD_KEY.search(text):
        return "the search text contains a control character or NUL"
    return None


def date_problem(day: _dt.date) -> str | None:
    """Why a case-list date cannot be used, or None."""
    if MIN_DATE <= day <= MAX_DATE:
        return None
    return f"{day.isoformat()} is outside the dates a case can have ({MIN_DATE.isoformat()} to {MAX_DATE.isoformat()})"

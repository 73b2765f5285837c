"""Resolve an option's verdict from its rule conditions, shared by every executor.

An option's rules are read in order and the first that holds decides. When a condition
is unknown, its verdict stays *possible* and reading goes on; the verdict is determined
only when every possible verdict is the same, which is exactly when no completion of the
unknown inputs could give another (up to Kleene's conservatism). A ``cap`` rule that
holds limits how good the verdict can be.

The row executors (:mod:`.row`, :mod:`.guidelines`) resolve with :func:`resolve_verdict`;
the frame executor (:mod:`.frame`) builds the same resolution as Polars expressions, and
:mod:`nelm.screen.sql` as SQL. Pure Python: it imports no other module of the package.
"""
from __future__ import annotations

from typing import Any

from ..knowledge import rule_column
from ..knowledge.ruleset import MASK_VERDICTS, VERDICTS, OptionDef


# bit j of ``possible__{option}`` is set when VERDICTS[j] is possible
_MASK_VERDICT = {m: MASK_VERDICTS.get(m, "undetermined") for m in range(1, 2 ** len(VERDICTS))}


def _cap(mask: int, level: int) -> int:
    better = (1 << level) - 1
    return (mask & ~better) | ((1 << level) if mask & better else 0)


def possible_verdicts(mask: int) -> list[str]:
    return [v for j, v in enumerate(VERDICTS) if mask >> j & 1]


_OPTION_BITS: dict[int, tuple[Any, ...]] = {}


def _bits(opt: OptionDef) -> tuple[list[tuple[str, int]], int, list[tuple[str, int]]]:
    """(rule column, verdict bit) of the deciding rules, the ``otherwise`` bit, (column, level) of
    the caps: what resolve_verdict reads, worked out once per option."""
    got = _OPTION_BITS.get(id(opt))
    if got is None or got[0] is not opt:
        deciding = [(rule_column(opt.id, r.id), 1 << VERDICTS.index(r.verdict)) for r in opt.deciding]
        caps = [(rule_column(opt.id, r.id), VERDICTS.index(r.cap)) for r in opt.caps]
        got = (opt, (deciding, 1 << VERDICTS.index(opt.otherwise.verdict), caps))
        _OPTION_BITS[id(opt)] = got
    return got[1]


def resolve_verdict(opt: OptionDef, row: dict[str, Any]) -> tuple[int, str]:
    """First rule that holds decides; unknown conditions keep their verdict possible; caps limit."""
    deciding, otherwise, caps = _bits(opt)
    mask = _resolve(deciding, otherwise, caps, row)
    return mask, _MASK_VERDICT[mask]


def _resolve(deciding: list[tuple[str, int]], otherwise: int, caps: list[tuple[str, int]], row: dict[str, Any]) -> int:
    mask = _deciding_mask(deciding, otherwise, row)
    for col, level in caps:
        cond = row[col]
        if cond is True:
            mask = _cap(mask, level)
        elif cond is None:
            mask |= _cap(mask, level)
    return mask


_RESOLUTION: dict[int, tuple[Any, tuple[tuple[Any, ...], ...]]] = {}


def resolve_all(options: Any, row: dict[str, Any]) -> None:
    """:func:`resolve_verdict` for each option (a knowledge base's ``options``), written into the
    row as ``possible__{option}`` and ``verdict__{option}``. The one-row engine does this on
    every evaluation (tens per plan): the columns and bits are worked out once per list of options."""
    got = _RESOLUTION.get(id(options))
    if got is None or got[0] is not options:
        got = (options, tuple((f"possible__{o.id}", f"verdict__{o.id}", *_bits(o)) for o in options))
        _RESOLUTION[id(options)] = got
    for possible_col, verdict_col, deciding, otherwise, caps in got[1]:
        mask = _resolve(deciding, otherwise, caps, row)
        row[possible_col] = mask
        row[verdict_col] = _MASK_VERDICT[mask]


def resolution_source(options: Any, name: str = "resolve") -> str:
    """:func:`resolve_all` for a knowledge base's ``options`` as the source of one Python function
    ``name(r)`` (its names ``_cap`` and ``_MASK_VERDICT`` from this module): each option's rules
    written out in order, with their columns and bits. The one-row engine resolves every
    evaluation this way (tens per plan; the loop over options and rules, with its calls, was a
    fifth of an evaluation's time). tests/test_rowcode.py checks it gives resolve_all's row."""
    lines = [f"def {name}(r):"]
    for o in options:
        deciding, otherwise, caps = _bits(o)
        # the first deciding rule that holds stops the reading; an unknown one adds its verdict
        lines += ["    m = 0", "    while True:"]
        for col, bit in deciding:
            lines += [f"        c = r[{col!r}]", "        if c is not False:", f"            m |= {bit}",
                      "            if c is True:", "                break"]
        lines += [f"        m |= {otherwise}", "        break"]
        for col, level in caps:
            lines += [f"    c = r[{col!r}]", "    if c is True:", f"        m = _cap(m, {level})",
                      "    elif c is None:", f"        m |= _cap(m, {level})"]
        lines += [f"    r[{'possible__' + o.id!r}] = m", f"    r[{'verdict__' + o.id!r}] = _MASK_VERDICT[m]"]
    lines.append("    return r")
    return "\n".join(lines) + "\n"


def _rule_mask(opt: OptionDef, row: dict[str, Any]) -> int:
    deciding, otherwise, _ = _bits(opt)
    return _deciding_mask(deciding, otherwise, row)


def _deciding_mask(deciding: list[tuple[str, int]], otherwise: int, row: dict[str, Any]) -> int:
    mask = 0
    for col, bit in deciding:
        cond = row[col]
        if cond is False:
            continue
        mask |= bit
        if cond is True:
            break
    else:
        mask |= otherwise
    return mask

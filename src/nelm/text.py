"""The assessment as a person reads it: a thirty-second summary for the tumour board."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from . import labels
from .evidence import cite
from .knowledge.ruleset import MODALITY_LABELS, OPTION_LABELS
from .summary import class_line, depends_line, plan_view

MARK = {"met": ("✓", "green"), "not_met": ("✗", "red"), "unknown": ("?", "yellow")}
VERDICT_STYLE = {"preferred": "bold green", "reasonable": "cyan", "not_recommended": "yellow",
                 "contraindicated": "bold red", "undetermined": "magenta"}
VERDICT_ORDER = ["preferred", "reasonable", "undetermined", "not_recommended", "contraindicated"]
PLAN_STYLE = {"determined": "bold green", "conditional": "bold yellow", "undetermined": "bold magenta"}


def _step_line(body: Text, st: dict[str, Any], indent: str = "") -> None:
    body.append(f"\n{indent}{st['n']}. {st['when']}: ", style="bold")
    if st["options"]:
        parts = []
        for o in st["options"]:
            if not o["verdict"]:
                parts.append(o["label"])
            elif o["note"]:
                parts.append(f"{o['label']} ({o['note'].replace('expected then', 'expected then: ' + labels.verdict_label(o['verdict']), 1)})")
            else:
                parts.append(f"{o['label']} ({labels.verdict_label(o['verdict'])})")
        body.append("".join(part + o["after"] for part, o in zip(parts, st["options"])))
        body.append(f" [{st['intent']}]", style="dim")
    else:
        body.append("no active treatment", style="italic")


def render_plan(a: dict[str, Any], console: Console, explain: bool = False) -> None:
    """The plan first: the leading recommendation and its sequence, then what it rests on."""
    plan = plan_view(a)
    if not plan:
        return
    body = Text()
    body.append(f"Plan {plan['status']}", style=PLAN_STYLE.get(plan["status"], "bold"))
    if plan["pathway"]:
        body.append(f" · {plan['pathway']}", style="dim")
    for st in plan["steps"]:
        _step_line(body, st)
        body.append(f"\n   {st['reason']}{_sources(st['sources'], st.get('level'))}", style="dim")
    if plan["workup"]:
        body.append("\nTo decide the plan, obtain: ", style="bold yellow")
        body.append("; ".join(f"{w['order']} ({w['facts']}; decides {w['decides']})" if w["decides"] else w["order"]
                              for w in plan["workup"]))
    for text, if_not in plan["assumptions"]:
        body.append(f"\nAssumes {text}; if not, {if_not}", style="yellow")
    for b in plan["branches"]:
        body.append(f"\nIf {b['if']}: plan {b['status']}", style="bold")
        for st in b["steps"]:
            _step_line(body, st, "   ")
            if explain:
                body.append(f"\n      {st['reason']}{_sources(st['sources'], st.get('level'))}", style="dim")
    if plan["status"] == "undetermined" and plan["missing"]:
        body.append("\nNo leading recommendation until these are known: " + ", ".join(plan["missing"]), style="magenta")
    console.print(Panel(body, title="Treatment plan"))


def _sources(srcs: list[str], level: str | None = None) -> str:
    """A reason's sources by author and year (ids only in the JSON)."""
    lvl = f"; level {level}" if level else ""
    return f" ({cite(srcs)}{lvl})" if srcs else ""


def _facts(r: dict[str, Any]) -> str:
    """Everything a rule read, for --explain (the structured ``facts`` of the JSON)."""
    return "; ".join(f"{f['label']}: {f['value']}" for f in r.get("facts", []))


def render(a: dict[str, Any], console: Console, explain: bool = False) -> None:
    """The summary a person reads. ``explain`` adds each rule's full logic: every input it
    read, and for an undetermined option each open rule with the verdict it would give."""
    c = a["classification"]
    head = Text()
    head.append("Classification: ", style="bold")
    head.append(class_line(c))
    if c.get("who2000_behaviour"):
        head.append(" · WHO 2000: " + labels.classification_value("who2000_behaviour", c["who2000_behaviour"]))
    if a.get("patient_id"):
        head.append(f"\nPatient: {a['patient_id']}")
    glance = {v: [o["label"].split(" (")[0] for o in a["options"] if o["verdict"] == v]
              for v in ("preferred", "reasonable", "undetermined")}
    for v, names in glance.items():
        if names:
            head.append(f"\n{v.capitalize()}: ", style=f"bold {VERDICT_STYLE[v]}")
            head.append(", ".join(names))
    console.print(Panel(head, title="nelm assessment", subtitle=f"knowledge base {a['knowledge_base']['version']}"
                        f" · governing source: {labels.guideline_label(a['knowledge_base']['guideline'])}"))
    render_plan(a, console, explain)

    for cid, cs in a["criteria"].items():
        mark, style = MARK[cs["status"]]
        console.print(Text(f"{mark} {cs['label']}: {cs['status'].replace('_', ' ')}", style=f"bold {style}"))
        for it in cs["items"]:
            m, s = MARK[it["status"]]
            line = Text(f"   {m} ", style=s)
            line.append(it["text"])
            line.append(f" — {it['reason']}{_sources(it['sources'], it.get('level'))}", style="dim")
            console.print(line)
    console.print()

    by_mod: dict[str, list[dict[str, Any]]] = {}
    for o in a["options"]:
        by_mod.setdefault(o["modality"], []).append(o)
    table = Table(title="Treatment options", show_lines=True, expand=True)
    table.add_column("option", ratio=2)
    table.add_column("verdict", min_width=15, no_wrap=True)
    table.add_column("reasons and sources", ratio=6)
    for mod, opts in by_mod.items():
        table.add_row(Text(MODALITY_LABELS.get(mod, mod), style="bold underline"), "", "")
        for o in sorted(opts, key=lambda o: VERDICT_ORDER.index(o["verdict"])):
            v = Text(labels.verdict_label(o["verdict"]), style=VERDICT_STYLE[o["verdict"]])
            v.append(f"\n{o['intent'].replace('_', ' ')}", style="dim")
            reasons = Text()
            shown = [r for r in o["reasons"] if explain or r["kind"] != "possible"]
            if o["verdict"] == "undetermined":
                reasons.append("? " + depends_line(o, a))
            for r in shown:
                if reasons:
                    reasons.append("\n")
                bullet = {"decisive": "• ", "possible": "  if: ", "note": "  note: "}[r["kind"]]
                reasons.append(bullet + r["text"], style="dim" if r["kind"] == "note" else "")
                reasons.append(_sources(r["sources"], r.get("level")), style="blue")
                if explain and r.get("facts"):
                    reasons.append(f"\n    read: {_facts(r)}", style="dim italic")
            for c in o.get("conditions", []):
                reasons.append(f"\n  condition: {c['requirement']} (not yet known)", style="yellow")
            table.add_row(o["label"], v, reasons)
    console.print(table)

    if a["disagreements"]:
        console.print(Text("Sources disagree for this patient:", style="bold"))
        for d in a["disagreements"]:
            vals = "; ".join(f"{labels.guideline_label(v['source'])}: {str(v['value']).replace('_', ' ')}"
                             for v in d["values"])
            console.print(f"  • {d['label']} — {vals} (governing: {labels.guideline_label(d['governing'])})")
            for g, changes in d.get("verdict_changes", {}).items():
                if changes:
                    what = ", ".join(f"{OPTION_LABELS.get(c['option'], c['option'])} "
                                     f"{labels.verdict_label(c['governing_verdict'])} → {labels.verdict_label(c['verdict'])}"
                                     for c in changes)
                    console.print(f"      under {labels.guideline_label(g)}: {what}")
        console.print()
    if a["missing_data"]:
        console.print(Text("To complete this assessment, obtain:", style="bold yellow"))
        orders: dict[str, list[dict[str, Any]]] = {}
        for m in a["missing_data"]:
            orders.setdefault(m.get("obtain") or m["label"], []).append(m)
        for what, items in orders.items():
            affects = sorted({x for m in items for x in m["affects"]})
            console.print(f"  • {what}: {', '.join(m['label'] for m in items)}"
                          f" → {', '.join(OPTION_LABELS.get(x, x.replace('_', ' ')) for x in affects)}")
    else:
        console.print(Text("No missing data affects a verdict or criterion.", style="green"))
    console.print()
    console.print(Text(a["disclaimer"], style="italic"))

"""Principle 6: numbers and citations carry over from the reviews, sentences do not."""
import re
from pathlib import Path

import pytest

from nelm.evidence import load_records
from nelm.knowledge import load

SOURCES = Path(__file__).resolve().parents[3] / "shared" / "sources"
N = 10  # a run of ten words in common is a copied sentence, not a shared term


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())  # numbers carry over, so only words count


def _own_texts() -> list[tuple[str, str]]:
    kb = load()
    out = [(f"derived {d.name}", d.label) for d in kb.derived]
    for cs in kb.criteria:
        out += [(f"{cs.id}.{it.id}", f"{it.text} {it.reason}") for it in cs.items]
    for o in kb.options:
        out += [(f"{o.id}.{r.id}", r.reason) for r in o.rules] + [(f"{o.id}.otherwise", o.otherwise.reason)]
    for r in load_records():  # everything but the citation, whose title is carried over by design
        parts = [r.summary or "", r.population, r.intervention, r.comparator or ""]
        parts += [c.text for c in r.criteria or []] + [o.note or "" for o in r.outcomes]
        out.append((f"evidence {r.id}", " ".join(parts)))
    return out


def test_no_sentence_of_the_reviews_is_copied():
    if not SOURCES.exists():
        pytest.skip(f"source reviews not found at {SOURCES}")
    words = _words(" ".join(p.read_text() for p in SOURCES.glob("*.txt")))
    grams = {tuple(words[i:i + N]) for i in range(len(words) - N)}
    copied = []
    for where, text in _own_texts():
        w = _words(text)
        hits = [" ".join(w[i:i + N]) for i in range(len(w) - N + 1) if tuple(w[i:i + N]) in grams]
        if hits:
            copied.append(f"{where}: {hits[0]!r}")
    assert not copied, "\n".join(copied)

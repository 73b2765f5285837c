"""The board's first screen and its paper in a real browser (issue 10): everything a board
needs first above the fold at 1280×800, the guideline switch, the decision, the version
diff, and /docs without internet access."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

EXAMPLE = json.loads((Path(__file__).parents[2] / "examples" / "solitary_resectable.json").read_text())


@pytest.fixture(scope="module")
def stored_case(board, browser) -> str:
    context = browser.new_context()
    r = context.request.post(board.url + "api/v1/assessments", data=json.dumps(EXAMPLE),
                             headers={"content-type": "application/json"})
    assert r.status == 201, r.text()
    case = r.json()["id"]
    changed = copy.deepcopy(EXAMPLE)
    changed["pathology"]["ki67_percent"] = 12
    assert context.request.put(board.url + f"api/v1/assessments/{case}", data=json.dumps(changed),
                               headers={"content-type": "application/json", "if-match": '"1"'}).status == 200
    context.close()
    return case


@pytest.fixture
def screen(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()


def test_plan_and_every_verdict_are_above_the_fold(board, screen, stored_case):
    screen.goto(board.url + f"cases/{stored_case}")
    for selector in ("#classification-line", "#plan", "#verdicts"):
        box = screen.locator(selector).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 800, (selector, box)
    chips = screen.locator("#verdicts a.chip")
    assert chips.count() == 19
    for i in range(chips.count()):  # the verdict is written, not only coloured
        assert re.search(r"preferred|reasonable|undetermined|not recommended|contraindicated", chips.nth(i).inner_text(),
                         re.I)
    screen.screenshot(path=str(Path(board.workdir) / "first-screen.png"))


def test_a_chip_leads_to_the_options_reasons(board, screen, stored_case):
    screen.goto(board.url + f"cases/{stored_case}")
    screen.locator("#verdicts a.chip", has_text="liver resection").click()
    assert screen.url.endswith("#option-liver_resection")
    assert screen.locator("#option-liver_resection").is_visible()


def test_the_guideline_switch_shows_another_source_without_saving(board, screen, stored_case):
    screen.goto(board.url + f"cases/{stored_case}")
    screen.locator("select#guideline").select_option("review002")
    screen.get_by_role("button", name="Show").click()
    screen.wait_for_url(re.compile(r"guideline=review002"))
    head = screen.locator(".case-head").inner_text()
    assert "Shown under Review 002's thresholds" in head and "For this patient it changes" in head
    assert "version 2 of 2" in screen.locator(".case-head .meta").inner_text()


def test_the_board_records_its_decision_on_the_page(board, screen, stored_case):
    screen.goto(board.url + f"cases/{stored_case}")
    screen.locator("#decision summary").click()
    screen.locator('select[name="chosen"]').first.select_option("ssa")
    screen.locator('textarea[name="rationale"]').fill("Patient prefers medical therapy.")
    screen.locator('textarea[name="attendees"]').fill("A. Surgeon (surgery)\nB. Oncologist (oncology)")
    screen.locator('input[name="signed_by"]').fill("B. Oncologist")
    screen.get_by_role("button", name="Record decision").click()
    # departing from the plan without a reason is refused, beside the form, entries kept
    assert "give the board's reason for departing" in screen.locator("#decision .problems").inner_text()
    assert screen.locator('textarea[name="rationale"]').input_value() == "Patient prefers medical therapy."
    screen.locator('textarea[name="deviation_reason"]').fill("Declines surgery after counselling.")
    screen.get_by_role("button", name="Record decision").click()
    screen.wait_for_url(re.compile(r"#decision$"))
    decided = screen.locator("#decision .decision.current").inner_text()
    assert "Declines surgery after counselling." in decided and "Departs from the assessment" in decided
    assert "departs from the plan" in screen.locator(".decided").inner_text()


def test_the_diff_between_versions_names_the_changed_fact(board, screen, stored_case):
    screen.goto(board.url + f"cases/{stored_case}")
    screen.get_by_role("link", name="what changed from version 1").click()
    facts = screen.locator("#fact-changes").inner_text()
    assert "Ki-67" in facts and "1 %" in facts and "12 %" in facts
    assert "G2" in screen.locator("#classification-changes").inner_text()


def test_docs_render_without_internet(board, screen):
    outside: list[str] = []
    screen.on("request", lambda r: outside.append(r.url) if not r.url.startswith(board.url) else None)
    screen.goto(board.url + "docs")
    screen.wait_for_selector(".swagger-ui .info", timeout=20000)
    assert "nelm" in screen.locator(".swagger-ui .info").inner_text()
    assert outside == []

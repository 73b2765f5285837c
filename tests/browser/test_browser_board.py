"""A clinician's path through the app in a real browser: enter, correct, reopen, restart."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nelm.web import forms

EXAMPLE = json.loads((Path(__file__).parents[2] / "examples" / "solitary_resectable.json").read_text())
LABEL = "BROWSER-MDT-001"


def fill_case(page, doc: dict) -> None:
    """Type a patient document into the case form the way a person would."""
    state = forms.state_from_document(doc)
    for path, value in state.values.items():
        field = page.locator(f'[name="{path}"]')
        if forms.FIELDS[path].kind in ("bool", "choice", "integer_choice"):
            field.select_option(value)
        else:
            field.fill(value)
    for site in state.sites:
        page.locator(f'input[name="extrahepatic.sites"][value="{site}"]').check()
    page.locator('select[name="prior_therapies"]').select_option(state.prior_mode)
    for i, row in enumerate(state.prior_rows):
        for part in ("therapy", "outcome", "ongoing"):
            if row[part]:
                page.locator(f'[name="prior_therapies.{i}.{part}"]').select_option(row[part])
        if row["months_to_progression"]:
            page.locator(f'[name="prior_therapies.{i}.months_to_progression"]').fill(row["months_to_progression"])


@pytest.fixture(scope="module")
def entered_case(board, browser) -> str:
    """The example patient entered through the form; returns the case page's path."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(board.url + "cases/new")
    fill_case(page, EXAMPLE | {"id": LABEL})
    page.get_by_role("button", name="Save and assess").click()
    page.wait_for_url(re.compile(r"/cases/[0-9a-f-]{36}$"))
    path = "/" + page.url.split("/", 3)[3]
    context.close()
    return path


def test_enter_a_case_and_see_its_verdicts(board, page, entered_case):
    page.goto(board.url.rstrip("/") + entered_case)
    assert page.locator("h1").inner_text() == LABEL
    resection = page.locator("#option-liver_resection")
    assert resection.locator(".verdict").inner_text() == "preferred"
    assert "intent: curative" in resection.inner_text()
    assert page.locator("#option-liver_transplant .verdict").inner_text() == "not recommended"
    assert page.locator("#criteria-enets_curative_resection h3 .status").inner_text() == "✓ met"
    # a cited source, named by author and year, opens its evidence record
    resection.locator("a.src", has_text="Mayo 2010").first.click()
    page.wait_for_url(re.compile(r"/evidence/mayo2010$"))
    assert page.get_by_role("heading", name="Outcomes").is_visible()


def test_an_impossible_ki67_is_explained_beside_the_field(board, page):
    page.goto(board.url + "cases/new")
    page.locator('[name="pathology.ki67_percent"]').fill("150")
    page.locator('[name="pathology.differentiation"]').select_option("well")
    page.get_by_role("button", name="Save and assess").click()
    field = page.locator('[id="f-pathology.ki67_percent"]')
    message = field.locator(".error")
    assert message.is_visible()
    assert "must be between 0 and 100 %" in message.inner_text()
    assert field.locator("input").input_value() == "150"  # what was typed stays for correcting
    assert page.locator('[name="pathology.differentiation"]').input_value() == "well"
    # correcting it saves the case
    field.locator("input").fill("15")
    page.get_by_role("button", name="Save and assess").click()
    page.wait_for_url(re.compile(r"/cases/[0-9a-f-]{36}$"))
    assert page.locator("dd", has_text="G2").first.is_visible()


def test_the_form_leads_with_what_decides_the_plan_and_adds_therapy_rows(board, page):
    page.goto(board.url + "cases/new")
    first = page.locator("fieldset").nth(1)
    assert "What decides the plan" in first.locator("legend").inner_text()
    assert first.locator(".decides-mark").count() >= 10
    rows = page.locator("table.prior tr.prior-row")
    before = rows.count()
    page.get_by_role("button", name="+ Add another therapy").click()
    assert rows.count() == before + 1
    assert rows.last.locator("select").first.get_attribute("name") == f"prior_therapies.{before}.therapy"


def test_a_contradiction_marks_both_fields_in_the_forms_words(board, page):
    page.goto(board.url + "cases/new")
    page.locator('[name="liver.pattern"]').select_option("single")
    page.locator('[name="liver.lesion_count"]').fill("6")
    page.get_by_role("button", name="Save and assess").click()
    for path in ("liver.pattern", "liver.lesion_count"):
        field = page.locator(f'[id="f-{path}"]')
        assert "invalid" in field.get_attribute("class"), path
        text = field.locator(".error").inner_text()
        assert "Pattern of liver involvement" in text and "Number of liver lesions" in text


@pytest.mark.parametrize("width", [390])
def test_pages_fit_a_phone(board, browser, entered_case, width):
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    for path in ("cases/new", "cases", entered_case.lstrip("/"), "evidence/review002"):
        page.goto(board.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
    context.close()


def test_reopen_a_stored_case_from_the_case_list(board, page, entered_case):
    page.goto(board.url + "cases")
    page.get_by_label("Case label or id").fill("browser-mdt")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("link", name=LABEL).click()
    page.wait_for_url(re.compile(re.escape(entered_case) + "$"))
    assert page.locator("#option-liver_resection .verdict").inner_text() == "preferred"


def test_the_case_survives_a_server_restart(board, page, entered_case):
    first_server = board.proc.pid
    board.restart()
    assert board.proc.pid != first_server
    page.goto(board.url + "cases")
    assert page.get_by_role("link", name=LABEL).is_visible()
    page.get_by_role("link", name=LABEL).click()
    page.wait_for_url(re.compile(re.escape(entered_case) + "$"))
    assert page.locator("h1").inner_text() == LABEL
    assert page.locator("#option-liver_resection .verdict").inner_text() == "preferred"

"""The CDS service's cases are kept no longer than NELM_CDS_RETENTION_DAYS after their last
assessment (issue 20 item 2): purged at start-up and on hook calls, in the audit chain."""
from __future__ import annotations

import copy
import datetime as dt

import pytest

from nelm.fhir import auth
from nelm.fhir.web import purge_expired
from nelm.store import chain
from nelm.store.repository import PURGE_ACTION, CasePurged

from test_cds import EXAMPLE, _prefetch, hook


def _hook_case(client) -> str:
    r = client.post("/cds-services/nelm-plan", json=hook(prefetch=_prefetch(copy.deepcopy(EXAMPLE))))
    assert r.status_code == 200, r.text
    return r.json()["cards"][0]["links"][0]["url"].rsplit("/", 1)[1]


def test_expired_cds_cases_are_purged_and_a_new_hook_makes_a_new_case(client, app):
    store = app.state.store
    first = _hook_case(client)
    assert _hook_case(client) == first  # one case per FHIR patient, while it is kept
    app.state.cds_settings.retention_days = 30
    now = dt.datetime.now(dt.timezone.utc)
    assert purge_expired(app, force=True, now=now + dt.timedelta(days=29)) == []
    assert purge_expired(app, force=True, now=now + dt.timedelta(days=31)) == [first]
    with pytest.raises(CasePurged):
        store.latest(first)
    assert client.get(f"/cases/{first}").status_code == 404
    [entry] = [e for e in store.audit(first) if e.action == PURGE_ACTION]
    assert entry.actor == "retention" and "NELM_CDS_RETENTION_DAYS=30" in entry.detail
    assert chain.verify(store.engine).ok
    second = _hook_case(client)
    assert second != first and store.latest(second).version == 1


def test_hook_calls_run_the_purge_at_most_hourly(client, app, monkeypatch):
    calls = []
    monkeypatch.setattr(app.state.store, "purge_expired", lambda before, **k: calls.append(before) or [])
    app.state.cds_purged_at = None
    _hook_case(client)
    _hook_case(client)
    assert len(calls) == 1
    days = (dt.datetime.now(dt.timezone.utc) - calls[0]).total_seconds() / 86400
    assert abs(days - auth.RETENTION_DAYS) < 0.01


def test_web_form_cases_are_not_the_cds_services_to_purge(client, app):
    from nelm.testing import make_patient
    from nelm.web.service import assess_and_store

    v = assess_and_store(app.state.store, make_patient(), actor="local")
    assert purge_expired(app, force=True, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3650)) == []
    assert app.state.store.latest(v.case_id).version == 1


@pytest.mark.parametrize("value", ["0", "-3", "ninety", "1.5"])
def test_retention_setting_is_refused_when_not_a_positive_number_of_days(monkeypatch, value):
    monkeypatch.setenv(auth.RETENTION_ENV, value)
    with pytest.raises(ValueError, match=auth.RETENTION_ENV):
        auth.settings_from_env()


def test_retention_setting_is_read(monkeypatch):
    monkeypatch.setenv(auth.RETENTION_ENV, "7")
    assert auth.settings_from_env().retention_days == 7
    monkeypatch.delenv(auth.RETENTION_ENV)
    assert auth.settings_from_env().retention_days == 90

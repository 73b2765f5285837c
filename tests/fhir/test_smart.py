"""SMART App Launch (EHR launch) end to end, against a fake SMART authorization server.

The fake server (a Starlette app served by uvicorn on 127.0.0.1 in a thread) is a FHIR
server's ``.well-known/smart-configuration``, an authorization endpoint that insists on
PKCE S256 and answers with a code, a token endpoint that checks the code verifier, and a
JWKS whose key signs the id_token. nelm (the real app, with an API token) is driven by
TestClient: a CDS hook makes the case and its card's ``smart`` link; the launch goes to the
authorization server; the callback opens the case page as the EHR user.

Each guard is shown to matter: a wrong or replayed state, a callback from another browser,
a server off the allow-list, a missing code verifier, another patient's case in appContext.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
import socket
import threading
import time
import uuid
import warnings
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from nelm.fhir.smart import STATE_COOKIE
from nelm.web import create_app

from cds_schemas import RESPONSE, conforms
from test_cds import EXAMPLE, _prefetch, hook

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "smart-test-token-0123456789"
CLIENT_ID = "nelm-test-client"
USER = "Practitioner/dr-kim"


class FakeSmartServer:
    """A FHIR server's SMART authorization server: authorize (PKCE S256 required), token
    (verifier checked), JWKS, SMART configuration. ``launches``: launch id → what the EHR
    puts in the token response (patient, appContext)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.launches: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.hits: list[str] = []
        self.require_pkce = True
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.iss = self.base + "/fhir"
        app = Starlette(routes=[
            Route("/fhir/.well-known/smart-configuration", self.configuration),
            Route("/auth/authorize", self.authorize),
            Route("/auth/token", self.token, methods=["POST"]),
            Route("/auth/jwks", self.jwks),
        ])
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                break
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)

    async def configuration(self, request: Request) -> JSONResponse:
        self.hits.append("configuration")
        return JSONResponse({
            "issuer": self.base + "/auth", "authorization_endpoint": self.base + "/auth/authorize",
            "token_endpoint": self.base + "/auth/token", "jwks_uri": self.base + "/auth/jwks",
            "code_challenge_methods_supported": ["S256"],
            "capabilities": ["launch-ehr", "client-public", "context-ehr-patient", "sso-openid-connect"]})

    async def authorize(self, request: Request) -> Any:
        q = dict(request.query_params)
        self.hits.append("authorize")
        if q.get("response_type") != "code" or q.get("client_id") != CLIENT_ID or q.get("launch") not in self.launches:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if self.require_pkce and (q.get("code_challenge_method") != "S256" or not q.get("code_challenge")):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE S256 required"}, 400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = q
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

    async def token(self, request: Request) -> JSONResponse:
        form = dict(await request.form())
        self.hits.append("token")
        asked = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or asked is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("redirect_uri") != asked["redirect_uri"] or form.get("client_id") != CLIENT_ID:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if self.require_pkce:
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not verifier or challenge != asked.get("code_challenge"):
                return JSONResponse({"error": "invalid_grant", "error_description": "PKCE verifier"}, 400)
        context = self.launches[asked["launch"]]
        now = int(time.time())
        id_token = jwt.encode({"iss": self.base + "/auth", "sub": "dr-kim-42", "aud": CLIENT_ID, "iat": now,
                               "exp": now + 300, "fhirUser": USER}, self.key, algorithm="RS256",
                              headers={"kid": "k1"})
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                             "scope": asked.get("scope"), "expires_in": 300, "id_token": id_token, **context})

    async def jwks(self, request: Request) -> JSONResponse:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return JSONResponse({"keys": [jwk | {"kid": "k1", "use": "sig", "alg": "RS256"}]})


@pytest.fixture(scope="module")
def smart_server():
    server = FakeSmartServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smart_app(tmp_path, smart_server):
    app = create_app(f"sqlite:///{tmp_path / 'cases.sqlite3'}", api_token=TOKEN, allowed_hosts=["testserver"])
    settings = app.state.cds_settings
    settings.allow_private = True  # the fake server listens on loopback
    settings.fhir_servers = (smart_server.iss,)
    settings.smart_client_id = CLIENT_ID
    return app


def _case_via_hook(client: TestClient, server: FakeSmartServer, patient_id: str = "p1") -> tuple[str, dict]:
    """The CDS service assesses the patient (one case per FHIR patient); its card's link."""
    doc = copy.deepcopy(EXAMPLE)
    prefetch = _prefetch(doc)
    for key, value in prefetch.items():  # the same records, of patient ``patient_id``
        prefetch[key] = json.loads(json.dumps(value).replace('"Patient/p1"', f'"Patient/{patient_id}"'))
    prefetch["patient"]["id"] = patient_id
    body = hook(prefetch=prefetch, patientId=patient_id) | {"fhirServer": server.iss}
    r = client.post("/cds-services/nelm-plan", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    conforms(RESPONSE, r.json())  # CDS Hooks 2.0 Link: label, url, type smart, appContext a string
    [link] = r.json()["cards"][0]["links"]
    return json.loads(link["appContext"])["case"], link


def _launch(client: TestClient, server: FakeSmartServer, app_context: str, patient: str = "p1") -> tuple[str, dict]:
    """The EHR launches nelm: the launch id it registered, and the authorization request nelm sent."""
    launch = str(uuid.uuid4())
    server.launches[launch] = {"patient": patient, "appContext": app_context}
    r = client.get("/smart/launch", params={"iss": server.iss, "launch": launch}, follow_redirects=False)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert location.startswith(server.base + "/auth/authorize?")
    return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _authorize(location: str) -> str:
    """The user approves at the EHR: the authorization server's redirect to nelm's callback."""
    r = httpx.get(location, follow_redirects=False, timeout=5)
    assert r.status_code == 302, r.text
    target = urlsplit(r.headers["location"])
    assert target.path == "/smart/callback"
    return f"{target.path}?{target.query}"


def test_card_link_is_a_smart_launch_with_the_case(smart_app, smart_server):
    with TestClient(smart_app) as client:
        case_id, link = _case_via_hook(client, smart_server)
    assert link["type"] == "smart" and link["url"] == "http://testserver/smart/launch"
    assert json.loads(link["appContext"]) == {"case": case_id} and link["label"]


def test_ehr_launch_opens_the_case_as_the_ehr_user(smart_app, smart_server):
    with TestClient(smart_app) as client:
        case_id, link = _case_via_hook(client, smart_server)
        location, asked = _launch(client, smart_server, link["appContext"])
        assert asked["response_type"] == "code" and asked["client_id"] == CLIENT_ID
        assert asked["redirect_uri"] == "http://testserver/smart/callback"
        assert asked["aud"] == smart_server.iss
        assert set(asked["scope"].split()) >= {"launch", "openid", "fhirUser", "patient/*.read"}
        assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
        assert len(asked["state"]) >= 32
        r = client.get(_authorize(location), follow_redirects=False)
        assert r.status_code == 200, r.text
        assert f'url=/cases/{case_id}"' in r.text
        assert client.cookies.get("nelm_session")  # the EHR user's session (no API token sent)
        page = client.get(f"/cases/{case_id}", follow_redirects=False)
        assert page.status_code == 200 and "Plan" in page.text or "plan" in page.text
        assert client.get("/cases/not-this-one", follow_redirects=False).status_code in (404, 200)
    audit = smart_app.state.store.audit(case_id)
    launch = [e for e in audit if e.action == "smart_launch"]
    assert launch and launch[-1].actor == f"ehr:{USER}"
    assert json.loads(launch[-1].detail) == {"iss": smart_server.iss, "id_token": "verified"}


def test_the_session_acts_as_the_ehr_user(smart_app, smart_server):
    with TestClient(smart_app) as client:
        case_id, link = _case_via_hook(client, smart_server)
        location, _ = _launch(client, smart_server, link["appContext"])
        assert client.get(_authorize(location)).status_code == 200
        cookie = client.cookies.get("nelm_session")
    security = smart_app.state.security
    assert security.session_actor(cookie) == (f"ehr:{USER}",)


def test_state_is_checked_and_used_once(smart_app, smart_server):
    with TestClient(smart_app) as client:
        _, link = _case_via_hook(client, smart_server)
        location, asked = _launch(client, smart_server, link["appContext"])
        callback = _authorize(location)
        forged = callback.replace(asked["state"], secrets.token_urlsafe(32))
        r = client.get(forged)
        assert r.status_code == 400 and "state" in r.text
        assert client.get(callback).status_code == 200
        r = client.get(callback)  # the same state again: used up
        assert r.status_code == 400 and "state" in r.text


def test_a_callback_from_another_browser_is_refused(smart_app, smart_server):
    with TestClient(smart_app) as victim_browser, TestClient(smart_app) as attacker:
        _, link = _case_via_hook(attacker, smart_server)
        location, _ = _launch(attacker, smart_server, link["appContext"])
        callback = _authorize(location)
        r = victim_browser.get(callback)  # login CSRF: the attacker's code in another browser
        assert r.status_code == 400 and "browser" in r.text
        assert not victim_browser.cookies.get("nelm_session")


def test_pkce_verifier_is_what_the_token_endpoint_checks(smart_app, smart_server, monkeypatch):
    """The fake server refuses an authorization request without S256 and a token request
    whose verifier does not match; nelm's verifier is the one bound to the state."""
    import nelm.fhir.smart as smart

    with TestClient(smart_app) as client:
        _, link = _case_via_hook(client, smart_server)
        location, asked = _launch(client, smart_server, link["appContext"])
        record = smart_app.state.smart_launches.pending[asked["state"]]
        challenge = base64.urlsafe_b64encode(hashlib.sha256(record.verifier.encode()).digest()).rstrip(b"=").decode()
        assert challenge == asked["code_challenge"]
        record.verifier = "x" * 64  # a verifier that is not the challenge's: the exchange fails
        r = client.get(_authorize(location))
        assert r.status_code == 502 and "token endpoint refused" in r.text
        assert smart is not None


def test_iss_off_the_allow_list_is_refused_before_any_request(smart_app, smart_server):
    with TestClient(smart_app) as client:
        before = len(smart_server.hits)
        other = smart_server.base + "/other-fhir"
        r = client.get("/smart/launch", params={"iss": other, "launch": "x"}, follow_redirects=False)
        assert r.status_code == 403 and "iss" in r.text
        smart_app.state.cds_settings.fhir_servers = ()  # no allow-list: no launch from anywhere
        r = client.get("/smart/launch", params={"iss": smart_server.iss, "launch": "x"}, follow_redirects=False)
        assert r.status_code == 403 and "NELM_CDS_FHIR_SERVERS" in r.text
        assert len(smart_server.hits) == before  # nothing was fetched from either


@pytest.mark.parametrize("params, field", [({"launch": "x"}, "iss"), ({"iss": "https://ehr.example/fhir"}, "launch")])
def test_launch_names_the_missing_field(smart_app, params, field):
    with TestClient(smart_app) as client:
        r = client.get("/smart/launch", params=params, follow_redirects=False)
    assert r.status_code == 422 and f"{field}: required" in r.text


def test_app_context_of_another_patients_case_is_refused(smart_app, smart_server):
    with TestClient(smart_app) as client:
        case_p1, link = _case_via_hook(client, smart_server, "p1")
        case_p2, _ = _case_via_hook(client, smart_server, "p2")
        assert case_p1 != case_p2
        # the EHR's patient is p2, the card's appContext names p1's case
        location, _ = _launch(client, smart_server, link["appContext"], patient="p2")
        r = client.get(_authorize(location))
        assert r.status_code == 403 and "appContext" in r.text
        assert not client.cookies.get("nelm_session")


def test_no_case_for_the_patient_is_said(smart_app, smart_server):
    with TestClient(smart_app) as client:
        location, _ = _launch(client, smart_server, "", patient="never-seen")
        r = client.get(_authorize(location))
        assert r.status_code == 404 and "no case" in r.text


def test_without_a_client_id_cards_link_to_the_page_and_launch_is_off(smart_app, smart_server):
    smart_app.state.cds_settings.smart_client_id = None
    with TestClient(smart_app) as client:
        doc = copy.deepcopy(EXAMPLE)
        r = client.post("/cds-services/nelm-plan", json=hook(prefetch=_prefetch(doc)),
                        headers={"Authorization": f"Bearer {TOKEN}"})
        [link] = r.json()["cards"][0]["links"]
        assert link["type"] == "absolute"
        r = client.get("/smart/launch", params={"iss": smart_server.iss, "launch": "x"}, follow_redirects=False)
        assert r.status_code == 503 and "NELM_SMART_CLIENT_ID" in r.text
    assert STATE_COOKIE

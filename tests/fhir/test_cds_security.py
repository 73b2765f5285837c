"""A CDS service an EHR can call (issue 20 item 4) and as hardened as the REST API (issue 24
item 3): JWT client authentication per CDS Hooks 2.0 (a test key, a loopback JWKS), the static
token for scripts, 401 as JSON, CORS, fhirServer allow-list and deadline, failed prefetches,
one case per FHIR patient, order-sign suggestions, cards in clinical words."""
from __future__ import annotations

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from nelm.fhir.auth import CdsClient, CdsSettings, fhir_server_problem
from nelm.labels import fields
from nelm.web import create_app

from bundles import ATC
from cds_schemas import RESPONSE, conforms
from conftest import TestClient
from test_cds import EXAMPLE, _prefetch, _renal, draft_orders, hook

TOKEN = "static-token-for-scripts-0123456789"
SERVICE = "http://testserver/cds-services/nelm-plan"
ISS = "https://ehr.example.org"


def _rsa() -> tuple[object, dict]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return key, jwk | {"kid": "k1", "alg": "RS384", "use": "sig"}


KEY, JWK = _rsa()


def signed(aud: str = SERVICE, iss: str = ISS, exp: float | None = None, jti: str | None = None, key=KEY,
           headers: dict | None = None, alg: str = "RS384") -> str:
    now = time.time()
    claims = {"iss": iss, "sub": "client-1", "aud": aud, "iat": int(now), "exp": int(exp or now + 300),
              "jti": jti or str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": "k1", "typ": "JWT"} | (headers or {}))


def _settings(**kw) -> CdsSettings:
    return CdsSettings(clients={ISS: CdsClient(ISS, jwks={"keys": [JWK]})}, allow_private=True, **kw)


@pytest.fixture
def protected(tmp_path):
    """A token-protected app (as served off loopback) whose CDS services accept EHR-signed JWTs."""
    app = create_app(f"sqlite:///{tmp_path / 'c.sqlite3'}", TOKEN, allowed_hosts=["testserver"])
    app.state.cds_settings = _settings(cors_origins=("https://sandbox.cds-hooks.org",))
    with TestClient(app) as c:
        yield c


def _plan(c, token: str | None, body: dict | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return c.post("/cds-services/nelm-plan", json=body or hook(prefetch=_prefetch(EXAMPLE)), headers=headers)


# ------------------------------------------------------------------ authentication

def test_an_ehr_signed_jwt_is_accepted_and_gets_cards(protected):
    r = _plan(protected, signed())
    assert r.status_code == 200, r.text
    conforms(RESPONSE, r.json())


def test_the_static_token_keeps_working_for_scripts(protected):
    assert _plan(protected, TOKEN).status_code == 200


@pytest.mark.parametrize("case", ["no credentials", "wrong aud", "expired", "unknown iss", "other key", "hs256",
                                  "garbage"])
def test_untrusted_calls_get_401_as_json(protected, case):
    other, _ = _rsa()
    token = {"no credentials": None, "wrong aud": signed(aud="http://testserver/cds-services/other"),
             "expired": signed(exp=time.time() - 3600), "unknown iss": signed(iss="https://evil.example"),
             "other key": signed(key=other), "hs256": jwt.encode({"iss": ISS, "aud": SERVICE, "exp": time.time() + 60,
                                                                  "jti": "x"}, "k" * 32, algorithm="HS256"),
             "garbage": "a.b.c"}[case]
    r = _plan(protected, token)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/json")  # never the HTML login page
    assert "detail" in r.json()


def test_a_replayed_jti_is_refused(protected):
    token = signed(jti="once")
    assert _plan(protected, token).status_code == 200
    r = _plan(protected, token)
    assert r.status_code == 401 and "replay" in r.json()["detail"]


def test_an_unauthenticated_program_never_gets_a_login_redirect(protected):
    r = protected.get("/cds-services", follow_redirects=False)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/json")


class _JwksServer:
    def __init__(self, jwks: dict):
        body = json.dumps(jwks).encode()
        self.hits = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_keys_from_an_allow_listed_jku_on_a_loopback_jwks(protected):
    server = _JwksServer({"keys": [JWK]})
    try:
        protected.app.state.cds_settings = CdsSettings(clients={ISS: CdsClient(ISS, jku=(server.url,))})
        assert _plan(protected, signed(headers={"jku": server.url})).status_code == 200
        assert server.hits == 1
        # a jku that is not on the client's allow-list is never fetched
        r = _plan(protected, signed(headers={"jku": server.url + "?other"}))
        assert r.status_code == 401 and "allow-list" in r.json()["detail"] and server.hits == 1
    finally:
        server.stop()


def test_es384_keys_work_too(protected):
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())) | {"kid": "k1"}
    protected.app.state.cds_settings = CdsSettings(clients={ISS: CdsClient(ISS, jwks={"keys": [jwk]})})
    assert _plan(protected, signed(key=key, alg="ES384")).status_code == 200


# ------------------------------------------------------------------ CORS

def test_cors_preflight_and_response_for_a_configured_origin(protected):
    origin = "https://sandbox.cds-hooks.org"
    pre = protected.options("/cds-services/nelm-plan", headers={"Origin": origin,
                                                               "Access-Control-Request-Method": "POST",
                                                               "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == origin
    assert "Authorization" in pre.headers["access-control-allow-headers"]
    r = protected.post("/cds-services/nelm-plan", json=hook(prefetch=_prefetch(EXAMPLE)),
                       headers={"Origin": origin, "Authorization": f"Bearer {signed()}"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin


def test_cors_refused_for_another_origin(protected):
    pre = protected.options("/cds-services/nelm-plan", headers={"Origin": "https://evil.example",
                                                               "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers
    r = _plan(protected, TOKEN)
    assert "access-control-allow-origin" not in r.headers


# ------------------------------------------------------------------ fhirServer: allow-list, deadline, token

@pytest.mark.parametrize("url,settings,why", [
    ("http://127.0.0.1:8080/fhir", CdsSettings(), "internal"),
    ("http://10.1.2.3/fhir", CdsSettings(), "internal"),
    ("http://169.254.169.254/latest", CdsSettings(), "internal"),
    ("http://[::1]/fhir", CdsSettings(), "internal"),
    ("https://ehr.example.org/fhir", CdsSettings(fhir_servers=("https://other.example.org/fhir",)), "allow-list"),
    ("ftp://ehr.example.org/fhir", CdsSettings(), "http or https"),
    ("https://user:pw@ehr.example.org/fhir", CdsSettings(), "credentials"),
])
def test_fhir_servers_refused(url, settings, why):
    assert why in fhir_server_problem(url, settings)


def test_an_allow_listed_server_is_allowed():
    s = CdsSettings(fhir_servers=("https://ehr.example.org/fhir",), allow_private=True)
    assert fhir_server_problem("https://ehr.example.org/fhir/R4", s) is None


def test_an_internal_fhir_server_is_refused_by_the_service(client, fhir_server):
    client.app.state.cds_settings.allow_private = False
    r = client.post("/cds-services/nelm-plan", json=hook() | {"fhirServer": fhir_server.url})
    assert r.status_code == 412 and "internal address" in r.json()["detail"]
    assert fhir_server.requests == []  # nothing was fetched


def test_the_token_is_never_sent_to_another_host(client, fhir_server):
    pre = _prefetch(EXAMPLE)
    pre["observations"]["link"] = [{"relation": "next", "url": "http://127.0.0.2:9/steal?x=1"}]
    body = hook(prefetch=pre) | {"fhirServer": fhir_server.url,
                                 "fhirAuthorization": {"access_token": "secret-ehr-token", "token_type": "Bearer",
                                                       "expires_in": 60, "scope": "x", "subject": "y"}}
    r = client.post("/cds-services/nelm-plan", json=body)
    assert r.status_code == 200
    assert "points away from the fhirServer" in r.json()["cards"][0]["detail"].replace("\\", "")
    assert fhir_server.requests == []


def test_a_trickling_fhir_server_is_cut_by_the_hook_deadline(client):
    class Slow(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.end_headers()
            for _ in range(200):  # a byte every 50 ms, for up to 10 s
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)

        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        client.app.state.cds_settings.deadline_seconds = 0.5
        r = client.post("/cds-services/nelm-plan",
                        json=hook() | {"fhirServer": f"http://127.0.0.1:{httpd.server_address[1]}/fhir"})
        assert r.status_code == 412 and "within the hook's 0.5 s" in r.json()["detail"]
    finally:
        httpd.shutdown()
        httpd.server_close()


# ------------------------------------------------------------------ failed prefetch

def test_a_prefetch_the_ehr_reports_as_failed_is_named_in_a_warning_card(client):
    pre = _prefetch(EXAMPLE)
    pre["observations"] = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "timeout", "diagnostics": "Observation search timed out"}]}
    [card] = client.post("/cds-services/nelm-plan", json=hook(prefetch=pre)).json()["cards"]
    assert card["indicator"] == "warning"
    detail = card["detail"].replace("\\", "")
    assert "Records may be missing" in detail and "Observation search timed out" in detail


def test_a_prefetch_the_ehr_reports_as_failed_is_fetched_again(client, fhir_server):
    from nelm.fhir.cds import PREFETCH

    pre = _prefetch(EXAMPLE)
    key = PREFETCH["observations"].replace("{{context.patientId}}", "p1")
    fhir_server.routes[key] = pre["observations"]
    pre["observations"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    [card] = client.post("/cds-services/nelm-plan", json=hook(prefetch=pre) | {"fhirServer": fhir_server.url}
                         ).json()["cards"]
    assert [p for p, _ in fhir_server.requests] == ["/fhir/" + key]
    assert "Records may be missing" not in card["detail"]


# ------------------------------------------------------------------ cases, orders, words

def test_one_case_per_fhir_patient_updated_not_duplicated(client, app):
    first = client.post("/cds-services/nelm-plan", json=hook(prefetch=_prefetch(EXAMPLE))).json()["cards"][0]
    second = client.post("/cds-services/nelm-plan", json=hook(prefetch=_prefetch(EXAMPLE))).json()["cards"][0]
    assert first["links"][0]["url"] == second["links"][0]["url"]
    page = app.state.store.list()
    assert page.total == 1 and page.items[0].patient_label == "FHIR Patient/p1 (EHR)"
    assert page.items[0].latest_version == 2


def test_order_sign_offers_to_remove_a_contraindicated_draft(client):
    orders = draft_orders(("rx1", ATC, "L01BC06"))  # capecitabine, eGFR 20: contraindicated
    body = hook("order-sign", _prefetch(_renal(20)), draftOrders=orders)
    r = client.post("/cds-services/nelm-order-sign", json=body)
    assert r.status_code == 200, r.text
    conforms(RESPONSE, r.json())
    [card] = r.json()["cards"]
    assert card["indicator"] == "critical" and card["selectionBehavior"] == "at-most-one"
    [suggestion] = card["suggestions"]
    assert suggestion["actions"] == [{"type": "delete", "description": suggestion["actions"][0]["description"],
                                      "resourceId": "MedicationRequest/rx1"}]
    assert {r["code"] for r in card["overrideReasons"]} >= {"board-decision"}


def test_an_order_named_only_by_text_is_recognised():
    from nelm.fhir.cds import _order_option

    option, how = _order_option({"resourceType": "MedicationRequest",
                                 "medicationCodeableConcept": {"text": "Lanreotide 120 mg deep s.c."}})
    assert option == "ssa" and "text" in how


def test_cards_speak_in_clinical_words_not_field_paths(client):
    doc = {k: v for k, v in EXAMPLE.items() if k not in ("liver", "extrahepatic")}
    [card] = client.post("/cds-services/nelm-plan", json=hook(prefetch=_prefetch(doc))).json()["cards"]
    dotted = [f for f in fields() if "." in f]
    text = card["summary"] + card["detail"].replace("\\", "")
    assert not [f for f in dotted if re.search(rf"(?<![\w/]){re.escape(f)}(?!\w)", text)]


# ------------------------------------------------------------------ settings

def test_a_clients_file_is_read(tmp_path, monkeypatch):
    from nelm.fhir.auth import settings_from_env

    f = tmp_path / "clients.json"
    f.write_text(json.dumps([{"iss": ISS, "jwks": {"keys": [JWK]}},
                             {"iss": "https://epic.example", "jku": ["https://epic.example/jwks.json"]}]))
    monkeypatch.setenv("NELM_CDS_CLIENTS", str(f))
    monkeypatch.setenv("NELM_CDS_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("NELM_CDS_FHIR_SERVERS", "https://ehr.example.org/fhir")
    s = settings_from_env()
    assert set(s.clients) == {ISS, "https://epic.example"} and s.cors_origins == ("https://a.example",
                                                                                    "https://b.example")
    assert s.fhir_servers == ("https://ehr.example.org/fhir",) and not s.allow_private


@pytest.mark.parametrize("content,why", [("{}", "JSON list"), ('[{"jwks": {"keys": []}}]', "'iss' is required"),
                                         ('[{"iss": "x"}]', "give 'jwks'"),
                                         ('[{"iss": "x", "jku": ["http://plain.example/k"]}]', "https URLs")])
def test_a_bad_clients_file_stops_nelm_serve_naming_the_problem(tmp_path, monkeypatch, capsys, content, why):
    from nelm.web.serve import check_cds_settings

    f = tmp_path / "clients.json"
    f.write_text(content)
    monkeypatch.setenv("NELM_CDS_CLIENTS", str(f))
    with pytest.raises(SystemExit) as exc:
        check_cds_settings()
    assert exc.value.code == 2 and why in capsys.readouterr().err

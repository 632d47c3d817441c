"""The JSON API and the FHIR API on the demo installation: tokens and roles, patient access, audit of
every read, no small count in any aggregate, problem details, the rate limit, and a FHIR round trip
against the person record."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from fhir.resources.R4B.bundle import Bundle  # noqa: E402

from openphm.governance.disclosure import small_counts  # noqa: E402
from openphm.measures.definitions import load_measures  # noqa: E402
from openphm.web.app import create_app  # noqa: E402
from openphm.web.tokens import create_token, revoke_token  # noqa: E402

LEVELS = ("practice", "pcn", "place", "ics", "imd_quintile", "age_band")


@pytest.fixture(scope="module")
def api(web_installation):
    app = create_app(web_installation.db)
    db = web_installation.db
    until = dt.date.today() + dt.timedelta(days=30)
    own, other = web_installation.practices
    person = app.state.db.frame("SELECT CAST(person_id AS VARCHAR) AS p FROM record.person WHERE practice_code = ? "
                                "ORDER BY person_id LIMIT 1", [own])["p"][0]
    theirs = app.state.db.frame("SELECT CAST(person_id AS VARCHAR) AS p FROM record.person WHERE practice_code = ? "
                                "ORDER BY person_id LIMIT 1", [other])["p"][0]
    tokens = {name: create_token(db, until, name)[1] for name in ("ann", "bob", "ada", "cat")}
    tokens["patient"] = create_token(db, until, person_id=person)[1]
    yield {"app": app, "client": TestClient(app), "tokens": tokens, "person": person, "theirs": theirs,
           "practices": (own, other), "db": db}
    app.state.db.close()


def _get(api, path: str, who: str | None):
    headers = {"Authorization": f"Bearer {api['tokens'][who]}"} if who else {}
    return api["client"].get(path, headers=headers)


def _audit(api) -> list[tuple]:
    return api["app"].state.db.frame("SELECT action, outcome, stated_user, details FROM audit.log "
                                     "ORDER BY seq").rows()


def test_the_openapi_description_is_served_and_lists_the_routes(api):
    spec = _get(api, "/api/v1/openapi.json", None).json()
    assert spec["openapi"].startswith("3.")
    assert {"/indicators", "/indicators/{measure_id}/results", "/lists/{list_id}/{practice}"} <= set(spec["paths"])


def test_no_aggregate_response_carries_a_count_from_1_to_7(api):
    checked = 0
    for who in (None, "bob", "ann"):
        for mid in load_measures():
            for level in LEVELS:
                offset = 0
                while offset is not None:
                    got = _get(api, f"/api/v1/indicators/{mid}/results?level={level}&limit=1000&offset={offset}", who)
                    assert got.status_code in (200, 404), (mid, level, got.text[:200])
                    if got.status_code == 404:
                        break
                    page = got.json()
                    counts = [r["numerator"] for r in page["items"]]
                    assert not small_counts(counts), (mid, level)
                    checked += len(counts)
                    offset = page["next_offset"]
        for path, column in (("/api/v1/segments", "people"), ("/api/v1/data-quality", "rows_read")):
            assert not small_counts([r[column] for r in _get(api, path, who).json()])
    assert checked > 1000


def test_results_page_and_filter_and_come_as_csv(api):
    whole = _get(api, "/api/v1/indicators/ae_attendances/results?level=practice&limit=1000", "ann").json()
    first = _get(api, "/api/v1/indicators/ae_attendances/results?level=practice&limit=2", "ann").json()
    assert first["items"] == whole["items"][:2] and first["total"] == whole["total"] and first["next_offset"] == 2
    period = whole["items"][0]["period"]
    one = _get(api, f"/api/v1/indicators/ae_attendances/results?level=practice&period={period}", "ann").json()
    assert one["items"] and all(r["period"] == period for r in one["items"])
    got = _get(api, "/api/v1/indicators/ae_attendances/results?level=practice&format=csv", "ann")
    assert got.headers["content-type"].startswith("text/csv")
    assert len(got.text.strip().splitlines()) == 1 + whole["total"]


def test_errors_are_problem_details(api):
    for path, status in (("/api/v1/indicators/nothing", 404), ("/api/v1/indicators/ae_attendances/results?limit=0",
                                                                  422), ("/api/v1/lists", 403)):
        got = _get(api, path, "ann")
        assert got.status_code == status and got.headers["content-type"] == "application/problem+json"
        body = got.json()
        assert body["status"] == status and body["title"] and body["detail"]
    bad = api["client"].get("/api/v1/indicators", headers={"Authorization": "Bearer ophm_not-a-token"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"


def test_a_revoked_token_stops_working(api):
    token_id, token = create_token(api["db"], dt.date.today(), "bob")
    headers = {"Authorization": f"Bearer {token}"}
    assert api["client"].get("/api/v1/indicators", headers=headers).status_code == 200
    revoke_token(api["db"], token_id)
    assert api["client"].get("/api/v1/indicators", headers=headers).status_code == 401


def test_tokens_without_direct_care_get_403_on_every_person_level_route(api):
    own, _ = api["practices"]
    person = api["person"]
    paths = ["/api/v1/lists", f"/api/v1/lists/frail_high_risk_no_coordinator/{own}", f"/fhir/Patient/{person}",
             f"/fhir/Patient/{person}/$everything", f"/fhir/Encounter?patient={person}",
             f"/fhir/Condition?patient={person}", f"/fhir/Observation?patient={person}"]
    for who in ("ann", "bob", "ada"):
        for path in paths:
            assert _get(api, path, who).status_code == 403, (who, path)
    assert _get(api, f"/fhir/Patient/{person}", None).status_code == 401


def test_a_patient_token_reads_its_own_record_only_and_every_read_is_audited(api):
    person, theirs = api["person"], api["theirs"]
    before = len(_audit(api))
    assert _get(api, f"/fhir/Patient/{person}", "patient").status_code == 200
    assert _get(api, f"/fhir/Patient/{person}/$everything", "patient").status_code == 200
    assert _get(api, f"/fhir/Patient/{theirs}", "patient").status_code == 403
    assert _get(api, f"/fhir/Encounter?patient={theirs}", "cat").status_code == 403
    assert _get(api, f"/fhir/Condition?patient={person}", "cat").status_code == 200
    log = _audit(api)[before:]
    assert [(a, o) for a, o, _, _ in log] == [("fhir_read", "allowed"), ("fhir_read", "allowed"),
                                              ("fhir_read", "refused"), ("fhir_read", "refused"),
                                              ("fhir_read", "allowed")]
    named = [json.loads(d)["person_ids"] for *_, d in log]
    assert named == [person, person, theirs, theirs, person]
    assert log[0][2].startswith("patient:") and log[4][2] == "api:cat"


def test_the_fhir_bundle_parses_and_equals_the_person_record(api):
    person = api["person"]
    got = _get(api, f"/fhir/Patient/{person}/$everything", "cat")
    assert got.headers["content-type"] == "application/fhir+json"
    bundle = Bundle.model_validate(got.json())
    resources = [e.resource for e in bundle.entry]
    kinds = [r.__resource_type__ for r in resources]
    assert kinds[0] == "Patient" and bundle.total == len(resources)
    patient = resources[0]
    db = api["app"].state.db
    row = db.frame("SELECT birth_year, birth_month, sex FROM record.person WHERE person_id = CAST(? AS UUID)",
                   [person]).row(0, named=True)
    assert patient.birthDate == f"{row['birth_year']:04d}-{row['birth_month']:02d}"
    assert patient.gender == {"F": "female", "M": "male"}[row["sex"]]
    assert patient.identifier[0].system == "https://fhir.nhs.uk/Id/nhs-number"
    encounters = sorted((r.class_fhir.code, str(r.period.start)[:10]) for r in resources
                        if r.__resource_type__ == "Encounter")
    expected = db.frame("""
        SELECT 'IMP' AS c, CAST(admission_date AS VARCHAR) AS d FROM record.inpatient_spell
            WHERE person_id = CAST(? AS UUID)
        UNION ALL SELECT 'EMER', CAST(arrival_date AS VARCHAR) FROM record.ae_attendance
            WHERE person_id = CAST(? AS UUID)
        UNION ALL SELECT 'AMB', CAST(appointment_date AS VARCHAR) FROM record.outpatient_appointment
            WHERE person_id = CAST(? AS UUID) AND attended""", [person] * 3)
    assert encounters == sorted(expected.iter_rows())
    conditions = sorted((r.code.text, str(r.onsetDateTime)[:10]) for r in resources
                        if r.__resource_type__ == "Condition")
    expected = db.frame("SELECT replace(condition, '_', ' '), CAST(first_date AS VARCHAR) FROM record.condition "
                        "WHERE person_id = CAST(? AS UUID)", [person])
    assert conditions == sorted(expected.iter_rows())
    assert "Observation" in kinds


def test_an_opted_out_person_is_still_visible_to_their_clinician(api):
    own, _ = api["practices"]
    got = api["app"].state.db.frame("SELECT CAST(person_id AS VARCHAR) AS p FROM record.person WHERE "
                                    "national_data_opt_out AND practice_code = ? LIMIT 1", [own])
    if got.height == 0:
        pytest.skip("no one at the clinician's practice opted out in this small demo")
    assert _get(api, f"/fhir/Patient/{got['p'][0]}", "cat").status_code == 200


def test_the_rate_limit_answers_429_with_retry_after(api):
    from openphm.web.api import _Limiter

    mounted = next(r.app for r in api["app"].routes if getattr(r, "path", "") == "/api/v1")
    kept = mounted.state.limiter
    mounted.state.limiter = _Limiter(3)
    try:
        headers = {"Authorization": f"Bearer {api['tokens']['bob']}"}
        codes = [api["client"].get("/api/v1/indicators", headers=headers).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        got = api["client"].get("/api/v1/indicators", headers=headers)
        assert int(got.headers["retry-after"]) >= 1 and got.headers["content-type"] == "application/problem+json"
    finally:
        mounted.state.limiter = kept


def test_no_request_the_description_allows_gives_a_server_error_or_breaks_the_schema(api):
    """Property-based (schemathesis, from the API's own OpenAPI description, called in process):
    generated requests to every operation, as an analyst and as a clinician, get no 5xx and every
    response matches the description (status, content type, body)."""
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", api["app"])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case) -> None:
            for who in ("ann", "cat"):
                case.call_and_validate(headers={"Authorization": f"Bearer {api['tokens'][who]}"})

        check()

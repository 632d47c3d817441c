"""A read-only FHIR R4 API under `/fhir`: the linked record of one person, for their clinicians and for
the patient themselves.

Resources (FHIR R4, checked with `fhir.resources.R4B` before they are sent), following UK Core
where it has a profile: `Patient` (NHS number identifier, https://fhir.nhs.uk/Id/nhs-number; gender;
birth year and month only, as the record holds; the UK Core ethnic category extension), `Encounter`
(admissions as IMP, A&E attendances as EMER, outpatient attendances as AMB), `Condition` (the
record's long-term conditions, with their first date), `Observation` (the electronic Frailty Index
and the 12-month risk of an emergency admission), `Patient/{id}/$everything` (a `Bundle`), and
`metadata` (the CapabilityStatement).

Who may read: a token (`openphm tokens create`) of a direct-care user, for people registered at a
practice in their scope (people who opted out included: the National Data Opt-out covers planning
and research, not direct care); or a patient-access token, for that patient only. Every read is
written to the audit log first (`fhir_read`, naming the person); a refusal too. Errors are
OperationOutcome resources.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from starlette.exceptions import HTTPException as StarletteHTTPException

from openphm.derive.efi import efi_codes, efi_sql
from openphm.identity.pseudonym import PERSON_ID
from openphm.lists.run import DIRECT_CARE
from openphm.web import data
from openphm.web.api import holder

FHIR_JSON = "application/fhir+json"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ETHNIC_EXTENSION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
ETHNIC_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
GENDER = {"F": "female", "M": "male"}
# SNOMED CT concepts for the two observations (electronic frailty index score; risk of emergency admission)
EFI_CODE = ("713636003", "Electronic frailty index score")
RISK_CODE = ("225338004", "Risk assessment")


def _outcome(status: int, code: str, text: str) -> JSONResponse:
    return JSONResponse({"resourceType": "OperationOutcome",
                         "issue": [{"severity": "error", "code": code, "diagnostics": text}]},
                        status_code=status, media_type=FHIR_JSON)


def _send(resource: dict) -> JSONResponse:
    return JSONResponse(resource, media_type=FHIR_JSON)


UK_CORE = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-"
PROFILED = ("Patient", "Encounter", "Condition", "Observation")


def _checked(model: type, resource: dict) -> dict:
    """The resource as JSON after `fhir.resources` (R4B) has validated it; the four clinical resources
    claim their UK Core profile (UKCore-Patient, -Encounter, -Condition, -Observation)."""
    if resource["resourceType"] in PROFILED:
        resource = {**resource, "meta": {"profile": [UK_CORE + resource["resourceType"]]}}
    return model.model_validate(resource).model_dump(mode="json", exclude_none=True)


def patient_resource(person: dict) -> dict:
    """A UK Core-shaped Patient from a record.person row (with its NHS number)."""
    r: dict[str, Any] = {"resourceType": "Patient", "id": person["person_id"],
                         "gender": GENDER.get(person["sex"], "unknown"),
                         "birthDate": f"{person['birth_year']:04d}-{person['birth_month']:02d}"}
    if person.get("nhs_number"):
        r["identifier"] = [{"system": NHS_NUMBER, "value": person["nhs_number"]}]
    if person.get("ethnic_category"):
        r["extension"] = [{"url": ETHNIC_EXTENSION, "valueCodeableConcept": {
            "coding": [{"system": ETHNIC_SYSTEM, "code": person["ethnic_category"]}]}}]
    if person.get("date_of_death"):
        r["deceasedDateTime"] = str(person["date_of_death"])
    if person.get("practice_code"):
        r["generalPractitioner"] = [{"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code",
                                                    "value": person["practice_code"]}}]
    return _checked(Patient, r)


def encounter_resources(db: data.Database, person_id: str) -> list[dict]:
    """Admissions (IMP), A&E attendances (EMER) and outpatient attendances (AMB), in date order."""
    got = db.frame("""
        SELECT 'spell' AS kind, spell_id AS id, admission_date AS start, discharge_date AS finish,
               primary_diagnosis AS reason FROM record.inpatient_spell WHERE person_id = CAST(? AS UUID)
        UNION ALL SELECT 'ae', attendance_id, arrival_date, NULL, NULL FROM record.ae_attendance
            WHERE person_id = CAST(? AS UUID)
        UNION ALL SELECT 'op', appointment_id, appointment_date, NULL, NULL FROM record.outpatient_appointment
            WHERE person_id = CAST(? AS UUID) AND attended
        ORDER BY start, kind, id""", [person_id] * 3)
    out = []
    classes = {"spell": ("IMP", "inpatient encounter"), "ae": ("EMER", "emergency"), "op": ("AMB", "ambulatory")}
    for r in got.rows(named=True) if got.height else []:
        code, display = classes[r["kind"]]
        e: dict[str, Any] = {"resourceType": "Encounter", "id": f"{r['kind']}-{r['id']}"[:64],
                             "status": "finished" if r["kind"] != "spell" or r["finish"] else "in-progress",
                             "class": {"system": ACT_CODE, "code": code, "display": display},
                             "subject": {"reference": f"Patient/{person_id}"},
                             "period": {"start": str(r["start"]), **({"end": str(r["finish"])} if r["finish"] else {})}}
        if r["reason"]:
            e["reasonCode"] = [{"coding": [{"system": ICD10, "code": r["reason"]}]}]
        out.append(_checked(Encounter, e))
    return out


def condition_resources(db: data.Database, person_id: str) -> list[dict]:
    """The record's conditions, each with its first recorded date."""
    got = db.frame("SELECT condition, first_date FROM record.condition WHERE person_id = CAST(? AS UUID) "
                   "ORDER BY condition", [person_id])
    return [_checked(Condition, {
        "resourceType": "Condition", "id": f"{r['condition']}"[:64].replace("_", "-"),
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"text": r["condition"].replace("_", " ")}, "subject": {"reference": f"Patient/{person_id}"},
        "onsetDateTime": str(r["first_date"])}) for r in (got.rows(named=True) if got.height else [])]


def observation_resources(db: data.Database, person_id: str) -> list[dict]:
    """The electronic Frailty Index today and the latest 12-month risk of an emergency admission."""
    out = []
    today = dt.date.today()
    with db.cursor() as cur:
        cur.register("efi_codes", efi_codes().to_arrow())
        try:
            row = cur.execute(f"WITH gp_event AS (SELECT * FROM record.gp_event WHERE person_id = CAST(? AS UUID)) "
                              f"{efi_sql(today, 'gp_event')}", [person_id]).fetchone()
        finally:
            cur.unregister("efi_codes")
    efi = float(row[2]) if row else 0.0
    out.append(_checked(Observation, {
        "resourceType": "Observation", "id": "efi", "status": "final",
        "code": {"coding": [{"system": SNOMED, "code": EFI_CODE[0], "display": EFI_CODE[1]}]},
        "subject": {"reference": f"Patient/{person_id}"}, "effectiveDateTime": today.isoformat(),
        "valueQuantity": {"value": round(efi, 4), "unit": "deficits / 36"}}))
    risk = db.frame("SELECT as_of, risk FROM risk.score WHERE person_id = CAST(? AS UUID) ORDER BY as_of DESC "
                    "LIMIT 1", [person_id])
    if risk.height:
        out.append(_checked(Observation, {
            "resourceType": "Observation", "id": "risk-emergency-admission", "status": "final",
            "code": {"coding": [{"system": SNOMED, "code": RISK_CODE[0], "display": RISK_CODE[1]}],
                     "text": "Risk of an emergency admission in the next 12 months"},
            "subject": {"reference": f"Patient/{person_id}"}, "effectiveDateTime": str(risk["as_of"][0]),
            "valueQuantity": {"value": round(float(risk["risk"][0]), 4), "unit": "probability"}}))
    return out


def _base(request: Request) -> str:
    """This server's FHIR base URL (the app is mounted at /fhir)."""
    return str(request.url).split("/fhir/", 1)[0] + "/fhir"


def _bundle(resources: list[dict], base: str, kind: str = "searchset") -> dict:
    """A Bundle of `resources`, each entry's fullUrl under this server's FHIR base URL."""
    return _checked(Bundle, {"resourceType": "Bundle", "type": kind, "total": len(resources),
                             "entry": [{"fullUrl": f"{base.rstrip('/')}/{r['resourceType']}/{r['id']}", "resource": r}
                                       for r in resources]})


def create_fhir(database: data.Database, db_path) -> FastAPI:
    """The FHIR application (mounted at /fhir by `openphm.web.app.create_app`)."""
    fhir = FastAPI(title="OpenPHM FHIR R4", docs_url=None, redoc_url=None, openapi_url=None)
    fhir.state.db, fhir.state.db_path = database, db_path
    from openphm.web.api import RATE_PER_MINUTE, _Limiter

    fhir.state.limiter = _Limiter(RATE_PER_MINUTE)

    @fhir.exception_handler(StarletteHTTPException)
    async def outcome(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {401: "login", 403: "forbidden", 404: "not-found", 429: "throttled"}
        got = _outcome(exc.status_code, codes.get(exc.status_code, "processing"), str(exc.detail))
        for k, v in (getattr(exc, "headers", None) or {}).items():
            got.headers[k] = v
        return got

    def person_for(request: Request, person_id: str) -> dict:
        """The person, after checking the token may read them and auditing the read (or the refusal)."""
        who = holder(request)
        if who is None:
            raise HTTPException(status_code=401, detail="A bearer token is needed.",
                                headers={"WWW-Authenticate": "Bearer"})
        if not PERSON_ID.match(person_id):
            raise HTTPException(status_code=404, detail="No such patient.")
        person = data.identified_person(database, person_id)
        if who.user is not None:
            allowed = who.user.direct_care and person is not None and \
                person["practice_code"] in data.practices_of(database, who.user.scope)
        else:
            allowed = who.person_id == person_id and person is not None
        purpose = DIRECT_CARE if who.user else "patient_access"
        if not allowed:
            data.record_access(database, "fhir_read", person_id, purpose, who.name,
                               refused_because="not this token's")
            raise HTTPException(status_code=403, detail="This token may not read that patient's record.")
        data.record_access(database, "fhir_read", person_id, purpose, who.name)
        return person

    @fhir.get("/metadata")
    def metadata() -> JSONResponse:
        """The CapabilityStatement."""
        by_patient = [{"name": "patient", "type": "reference"}]
        types = [("Patient", [{"name": "_id", "type": "token"}]), ("Encounter", by_patient),
                 ("Condition", by_patient), ("Observation", by_patient)]
        return _send(_checked(CapabilityStatement, {
            "resourceType": "CapabilityStatement", "status": "active", "date": dt.date.today().isoformat(),
            "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
            "software": {"name": "OpenPHM"},
            "implementation": {"description": "OpenPHM's read-only FHIR API: one person's linked record"},
            "rest": [{"mode": "server",
                      "security": {"description": "Bearer tokens (openphm tokens create): direct-care users "
                                                  "within their scope, or the patient"},
                      "resource": [{"type": t, "interaction": [{"code": "read"}, {"code": "search-type"}],
                                    "searchParam": p} for t, p in types],
                      "operation": [{"name": "everything",
                                     "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]}]}))

    @fhir.get("/Patient/{person_id}")
    def read_patient(person_id: str, request: Request) -> JSONResponse:
        """One patient."""
        return _send(patient_resource(person_for(request, person_id)))

    @fhir.get("/Patient/{person_id}/$everything")
    def everything(person_id: str, request: Request) -> JSONResponse:
        """The patient and every encounter, condition and observation, as a Bundle."""
        person = person_for(request, person_id)
        resources = [patient_resource(person), *encounter_resources(database, person_id),
                     *condition_resources(database, person_id), *observation_resources(database, person_id)]
        return _send(_bundle(resources, _base(request)))

    def search(kind: str, build, request: Request, patient: str | None) -> JSONResponse:
        if not patient:
            raise HTTPException(status_code=400, detail=f"{kind} is searched by patient (?patient=ID).")
        person_id = patient.removeprefix("Patient/")
        person_for(request, person_id)
        return _send(_bundle(build(database, person_id), _base(request)))

    @fhir.get("/Encounter")
    def encounters(request: Request, patient: str | None = None) -> JSONResponse:
        """A patient's encounters."""
        return search("Encounter", encounter_resources, request, patient)

    @fhir.get("/Condition")
    def conditions(request: Request, patient: str | None = None) -> JSONResponse:
        """A patient's conditions."""
        return search("Condition", condition_resources, request, patient)

    @fhir.get("/Observation")
    def observations(request: Request, patient: str | None = None) -> JSONResponse:
        """A patient's frailty index and risk score."""
        return search("Observation", observation_resources, request, patient)

    return fhir

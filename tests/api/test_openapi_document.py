"""The OpenAPI document describes every endpoint: summary, examples and error responses."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][name]
    return schema


def has_example(spec: dict[str, Any], media: dict[str, Any], depth: int = 0) -> bool:
    if "example" in media or "examples" in media:
        return True
    schema = resolve(spec, media.get("schema", {}))
    if "examples" in schema or "example" in schema:
        return True
    if depth > 3:
        return False
    if schema.get("type") == "array":
        return has_example(spec, {"schema": schema.get("items", {})}, depth + 1)
    return any(has_example(spec, {"schema": p}, depth + 1) for p in schema.get("properties", {}).values())


def test_every_operation_has_a_summary_examples_and_documented_errors(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    problems = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            if not operation.get("summary"):
                problems.append(f"{where}: no summary")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and not has_example(spec, body):
                problems.append(f"{where}: no request example")
            ok = next((r for s, r in operation["responses"].items() if s.startswith("2")), {})
            media = ok.get("content", {}).get("application/json")
            if media is not None and not has_example(spec, media):
                problems.append(f"{where}: no response example")
            takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
            needed = {"401", "422"} if takes_input else {"401"}
            if path.startswith("/api/") and not needed <= set(operation["responses"]):
                problems.append(f"{where}: errors not documented")
            for status, response in operation["responses"].items():
                if int(status) >= 400 and "application/problem+json" not in response.get("content", {}):
                    problems.append(f"{where}: {status} is not problem+json")
    assert not problems, "\n".join(problems)
    assert api.client.get("/docs").status_code == 200


def test_every_operation_has_a_description_and_a_camel_case_operation_id_of_its_own(api: Api) -> None:
    import re

    spec = api.client.get("/openapi.json").json()
    ids: list[str] = []
    problems = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            if not operation.get("description", "").strip():
                problems.append(f"{where}: no description")
            operation_id = operation.get("operationId", "")
            if not re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)+|[a-z]+", operation_id):
                problems.append(f"{where}: operationId {operation_id!r} is not camelCase")
            ids.append(operation_id)
            for tag in operation.get("tags", []):
                if tag not in {t["name"] for t in spec.get("tags", [])}:
                    problems.append(f"{where}: tag {tag!r} is not described")
    assert not problems, "\n".join(problems)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert spec["paths"]["/api/v1/tickets/{ticket_id}/assign"]["post"]["operationId"] == "assignTicket"
    assert all(t.get("description") for t in spec["tags"])


def test_the_document_names_its_license_contact_and_the_webhook_it_sends(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["license"]["identifier"] == "Apache-2.0" and spec["info"]["contact"]["url"]
    delivery = spec["webhooks"]["ticketflowEvent"]["post"]
    assert delivery["description"] and delivery["operationId"] == "receiveTicketflowEvent"
    body = delivery["requestBody"]["content"]["application/json"]
    assert has_example(spec, body)
    event = resolve(spec, body["schema"]["properties"]["event"])
    assert "payload" in event["properties"] and "event_type" in event["properties"]


def test_every_field_of_every_schema_is_described(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    undescribed = [
        f"{name}.{field}"
        for name, schema in spec["components"]["schemas"].items()
        for field, prop in (schema.get("properties") or {}).items()
        if not str(prop.get("description", "")).strip()
    ]
    assert not undescribed, "describe these in api/field_docs.py: " + ", ".join(undescribed)
    tickets = spec["components"]["schemas"]["TicketOut"]["properties"]
    assert "new, open, pending, on_hold, solved or closed" in tickets["status"]["description"]
    assert spec["components"]["schemas"]["Problem"]["properties"]["status"]["description"] == "The HTTP status code."


def test_every_write_documents_the_command_headers_and_the_bearer_scheme(api: Api) -> None:
    """The write routes read If-Match, Idempotency-Key and X-Correlation-Id from the request
    (api.deps.commands), not as FastAPI parameters: the document lists them all the same."""
    spec = api.client.get("/openapi.json").json()
    writes = [
        (f"{method.upper()} {path}", operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if path.startswith("/api/v1/tickets") and method == "post" and "CommandOut" in str(operation["responses"])
    ]
    assert len(writes) > 20  # opening a ticket and every command on one
    for where, operation in writes:
        headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
        assert {"if-match", "idempotency-key", "x-correlation-id"} <= set(headers), where
        assert headers["if-match"]["required"] is False and "412" in headers["if-match"]["description"], where
        assert {"HTTPBearer": []} in operation["security"], where
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_every_read_documents_the_bearer_scheme_where_fastapi_puts_it(api: Api) -> None:
    """The read routes take the caller from the token itself (api.deps.reads has no Depends(bearer)):
    the document still requires the bearer scheme on each, before its parameters as FastAPI lays it out."""
    spec = api.client.get("/openapi.json").json()
    reads = [
        (f"GET {path}", operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method == "get" and any(p["name"] == "min_position" for p in operation.get("parameters", []))
    ]
    assert len(reads) > 20  # tickets, customers, teams, searches, reports...
    for where, operation in reads:
        assert operation.get("security") == [{"HTTPBearer": []}], where
        keys = list(operation)
        assert keys.index("operationId") < keys.index("security") < keys.index("parameters"), where

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

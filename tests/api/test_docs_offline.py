"""/docs and /redoc make no request outside this server: desks run offline (no CDN, no Google fonts)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import Api


class _Urls(HTMLParser):
    """Every src= and href= in a page, and ReDoc's spec-url=."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls.extend(value for name, value in attrs if name in ("src", "href", "spec-url") and value is not None)


def urls_in(html: str) -> list[str]:
    parser = _Urls()
    parser.feed(html)
    # Swagger UI is told where the OpenAPI document is inside its inline script: url: '/openapi.json'.
    return parser.urls + re.findall(r"""\burl:\s*['"]([^'"]*)['"]""", html)


def same_server(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and url.startswith("/")  # a path on this server, not //host/...


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_everything_from_this_server(api: Api, page: str) -> None:
    response = api.client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    urls = urls_in(html)
    assert any(url.endswith(".js") for url in urls), urls  # the page does load its script from somewhere
    assert "/openapi.json" in urls, urls
    outside = [url for url in urls if not same_server(url)]
    assert outside == [], f"{page} loads from outside this server: {outside}"
    assert "://" not in html, "an absolute URL in the page (a CDN, Google fonts, a favicon host)"
    for url in urls:
        asset = api.client.get(url)
        assert asset.status_code == 200, f"{page} -> {url}: {asset.status_code}"
        assert asset.content, f"{page} -> {url}: empty"


def test_the_swagger_ui_served_renders_openapi_3_1(api: Api) -> None:
    """FastAPI writes OpenAPI 3.1; Swagger UI 4 (the swagger-ui-bundle wheel's 4.15.5) answers that with
    "Unable to render this definition". Swagger UI 5 knows the 3.1 version field."""
    assert api.client.get("/openapi.json").json()["openapi"].startswith("3.1")
    script = next(url for url in urls_in(api.client.get("/docs").text) if url.endswith("swagger-ui-bundle.js"))
    assert b"openapi: 3.1.0" in api.client.get(script).content


def test_redoc_asks_for_no_google_fonts_and_swagger_ui_for_no_online_validator(api: Api) -> None:
    assert "fonts.googleapis.com" not in api.client.get("/redoc").text
    assert '"validatorUrl": null' in api.client.get("/docs").text


def test_the_oauth2_redirect_page_is_served_and_self_contained(api: Api) -> None:
    response = api.client.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert "://" not in response.text
    assert urls_in(response.text) == []


def test_the_documentation_needs_no_token_and_the_assets_are_only_the_documentation(api: Api) -> None:
    assert api.client.get("/docs").status_code == 200  # no Authorization header
    assert api.client.get("/api/docs-static/not-there.js").status_code == 404

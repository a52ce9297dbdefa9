"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served from this server: desks run offline.

FastAPI's own pages load their JavaScript and CSS from cdn.jsdelivr.net, their favicon from
fastapi.tiangolo.com, and ReDoc's fonts from Google. Here the assets come from the
``fastapi-offline`` wheel (Swagger UI 5 and ReDoc's standalone bundle), mounted under
:data:`DOCS_STATIC`, and ReDoc is asked for no Google fonts.

Swagger UI must be 5.x: FastAPI writes OpenAPI 3.1, which Swagger UI 4 (the one the
``swagger-ui-bundle`` wheel ships, 4.15.5) refuses with "Unable to render this definition".
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the documentation pages' static assets are mounted (a Mount, not a Route: public, no
#: access rule; tests/access/test_route_access_matrix.py accepts exactly this mount).
DOCS_STATIC = "/api/docs-static"
DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_URL = "/redoc"

#: Swagger UI's online validator badge would fetch an image from validator.swagger.io: off.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
#: The pages may load nothing from elsewhere: ReDoc's footer would fetch Redocly's logo from
#: cdn.redoc.ly, which this policy blocks in the browser before any request leaves it. (Both
#: viewers inline their start-up script and styles, and ReDoc runs its search in a blob worker.)
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'")


def assets_directory() -> str:
    """The directory of the wheel's assets: swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png."""
    return str(files("fastapi_offline") / "static")


def install(app: FastAPI) -> None:
    """Mount the assets and add ``GET /docs``, ``GET /docs/oauth2-redirect`` and ``GET /redoc``.

    Build the app with ``docs_url=None, redoc_url=None`` so FastAPI adds no CDN pages of its own."""
    app.mount(DOCS_STATIC, StaticFiles(directory=assets_directory()), name="docs-static")

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        prefix = root(request)
        return _no_outside_requests(get_swagger_ui_html(
            openapi_url=f"{prefix}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{prefix}{OAUTH2_REDIRECT_URL}",
            swagger_js_url=f"{prefix}{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{prefix}{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{prefix}{DOCS_STATIC}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        ))

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        prefix = root(request)
        return _no_outside_requests(get_redoc_html(
            openapi_url=f"{prefix}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{prefix}{DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{prefix}{DOCS_STATIC}/favicon.png",
            with_google_fonts=False,
        ))


def _no_outside_requests(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page

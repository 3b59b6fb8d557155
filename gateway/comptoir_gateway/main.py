"""The gateway application: API, web interface, health and metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from comptoir_common.logs import configure_logging
from comptoir_common.rpc_client import RpcClient
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from comptoir_gateway.api import api_router
from comptoir_gateway.live import LiveHub
from comptoir_gateway.revocations import Revocations
from comptoir_gateway.rpc import Services
from comptoir_gateway.settings import GatewaySettings
from comptoir_gateway.web import account as web_account
from comptoir_gateway.web import admin as web_admin
from comptoir_gateway.web import customer_picker
from comptoir_gateway.web.customers import router as customers_page_router
from comptoir_gateway.web.events import router as events_page_router
from comptoir_gateway.web.imports import router as import_page_router
from comptoir_gateway.web.mail import router as mail_page_router
from comptoir_gateway.web.rendering import render_page
from comptoir_gateway.web.reports import router as reports_page_router
from comptoir_gateway.web.routes import LoginRequired
from comptoir_gateway.web.routes import router as web_router
from comptoir_gateway.web.tickets import router as ticket_pages_router
from comptoir_gateway.web.webhooks import router as webhooks_page_router
from comptoir_gateway.web.wiki import router as wiki_web_router

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("comptoir_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "comptoir_http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Pages render only our own templates and assets; nothing inline, nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

ERROR_TITLES = {
    400: "Demande incorrecte",
    401: "Connexion requise",
    403: "Accès refusé",
    404: "Page introuvable",
    409: "Conflit",
    413: "Fichier trop volumineux",
    422: "Données invalides",
    429: "Trop de tentatives",
    503: "Service indisponible",
    504: "Service trop lent",
}


def create_app(settings: GatewaySettings | None = None) -> ObservedApp:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        client = RpcClient(settings.amqp_uri, timeout=settings.rpc_timeout, name="gateway")
        await client.connect()
        app.state.rpc_client = client
        app.state.services = Services(client)
        app.state.live = LiveHub()
        await app.state.live.start(client)
        # Revoked sessions and deactivated users: learnt from auth's events, loaded from auth at start.
        revocations = Revocations()
        app.state.revocations = revocations
        background = [
            asyncio.create_task(revocations.start(client)),
            asyncio.create_task(revocations.prune_forever()),
        ]
        log.info("gateway ready", extra={"port": settings.port})
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await client.close()

    app = FastAPI(
        title="Comptoir API",
        version="1.0",
        description="API du helpdesk Comptoir. Authentification : `POST /api/v1/auth/login` puis "
        "`Authorization: Bearer <jeton>`.",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = settings

    app.include_router(api_router)
    app.include_router(web_router)
    app.include_router(ticket_pages_router)
    app.include_router(customer_picker.router)
    app.include_router(events_page_router)
    app.include_router(customers_page_router)
    app.include_router(wiki_web_router)
    app.include_router(reports_page_router)
    app.include_router(web_account.router)
    app.include_router(web_admin.router)
    app.include_router(import_page_router)
    app.include_router(webhooks_page_router)
    app.include_router(mail_page_router)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        client: RpcClient | None = getattr(request.app.state, "rpc_client", None)
        connected = client is not None and client.connected
        revocations = getattr(request.app.state, "revocations", None)
        loaded = revocations is not None and revocations.ready
        healthy = connected and loaded
        return JSONResponse(
            {
                "service": "gateway",
                "status": "ok" if healthy else "error",
                "checks": {
                    "amqp": "ok" if connected else "down",
                    "revocations": "ok" if loaded else "loading",
                },
            },
            status_code=200 if healthy else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_path)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        message = exc.detail if isinstance(exc.detail, str) else exc.detail.get("message", "")
        title = ERROR_TITLES.get(exc.status_code, "Erreur")
        return render_page(
            request, "error.html", {"title": title, "message": message}, status_code=exc.status_code
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(part) for part in error["loc"][1:]), "message": error["msg"]}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": "Données invalides.", "errors": problems}, status_code=422)

    return ObservedApp(app)


class ObservedApp:
    """Counts and times requests per route and adds the security headers, as plain ASGI.

    Starlette's ``BaseHTTPMiddleware`` would cost a task and a stream copy per request on the hot path.
    """

    def __init__(self, app: FastAPI):
        self.app = app
        self.state = app.state
        self._headers = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                if scope["path"] != "/docs":
                    present = {name for name, _ in message.get("headers", [])}
                    message["headers"] = list(message.get("headers", [])) + [
                        header for header in self._headers if header[0] not in present
                    ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            route_path = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(scope["method"], route_path, str(status["code"])).inc()
            HTTP_DURATION.labels(scope["method"], route_path).observe(time.perf_counter() - started)


def main() -> None:
    import uvicorn

    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level="warning", access_log=False
    )

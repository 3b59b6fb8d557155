"""The REST API under ``/api/v1``."""

from fastapi import APIRouter

from comptoir_gateway.api.routes import (
    auth,
    customers,
    events,
    imports,
    mail,
    me,
    reports,
    ticket_config,
    tickets,
    users,
    webhooks,
    wiki,
)

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(tickets.router)
api_router.include_router(tickets.dashboard_router)
api_router.include_router(ticket_config.router)
api_router.include_router(events.router)
api_router.include_router(wiki.router)
api_router.include_router(reports.router)
api_router.include_router(customers.router)
api_router.include_router(mail.router)
api_router.include_router(users.router)
api_router.include_router(me.router)
api_router.include_router(imports.router)
api_router.include_router(webhooks.router)

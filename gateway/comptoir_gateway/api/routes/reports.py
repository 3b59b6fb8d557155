"""Reports and statistics. The reports service applies the visibility rules (who sees which figures)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import CurrentActor

router = APIRouter(prefix="/reports", tags=["reports"])


class ReportFilters(BaseModel):
    """Filters every report accepts; without a period, the last 90 days."""

    start: str | None = None
    end: str | None = None
    customer_id: str | None = None
    type: str | None = None
    priority: str | None = None
    agent_id: str | None = None
    granularity: Literal["day", "week", "month"] | None = None

    def to_rpc(self) -> dict[str, Any]:
        return {key: value for key, value in self.model_dump().items() if value not in (None, "")}


FiltersQuery = Annotated[ReportFilters, Query()]


class ClientSummaryIn(BaseModel):
    enabled: bool


def csv_response(export: dict[str, str]) -> Response:
    return Response(
        export["content"].encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{export["filename"]}"'},
    )


@router.get("")
async def list_reports(actor: CurrentActor, services: ServicesDep) -> list[dict]:
    """The reports you may open."""
    return await services.call("reports", "list_reports", actor=actor)


@router.get("/rebuild")
async def rebuild_status(actor: CurrentActor, services: ServicesDep) -> dict:
    """The latest rebuild of the statistics and the size of the projection (staff)."""
    return await services.call("reports", "rebuild_status", actor=actor)


@router.post("/rebuild", status_code=202)
async def request_rebuild(actor: CurrentActor, services: ServicesDep) -> dict:
    """Rebuild every figure from the tickets' history (admins); runs in the background."""
    return await services.call("reports", "request_rebuild", actor=actor)


@router.put("/client-summaries/{customer_id}")
async def set_client_summary(
    customer_id: str, body: ClientSummaryIn, actor: CurrentActor, services: ServicesDep
) -> dict:
    """Let a customer's clients see their own company's summary figures (admins)."""
    return await services.call(
        "reports", "set_client_summary", actor=actor, customer_id=customer_id, enabled=body.enabled
    )


@router.get("/{report}.csv", response_class=Response)
async def export_report(
    report: str,
    filters: FiltersQuery,
    actor: CurrentActor,
    services: ServicesDep,
    separator: Literal["comma", "semicolon"] = "semicolon",
) -> Response:
    """The report as CSV (UTF-8 with BOM); ``separator=semicolon`` (default, with decimal commas) suits Excel in
    French, ``comma`` other tools."""
    export = await services.call(
        "reports", "export_report", actor=actor, report=report, filters=filters.to_rpc(), separator=separator
    )
    return csv_response(export)


@router.get("/{report}")
async def get_report(report: str, filters: FiltersQuery, actor: CurrentActor, services: ServicesDep) -> dict:
    """One report: ``columns`` (key, French label, kind), ``rows``, and the ``chart`` that suits it."""
    return await services.call("reports", "get_report", actor=actor, report=report, filters=filters.to_rpc())

"""The reports page (``/rapports``): the report list, the filters, a chart, the table under it and the CSV export."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from comptoir_gateway.api.routes.reports import ReportFilters
from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.web import customer_picker
from comptoir_gateway.web.charts import chart_for
from comptoir_gateway.web.rendering import render_page
from comptoir_gateway.web.routes import require_actor, submit_form

router = APIRouter(include_in_schema=False)


def _number_fr(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    return str(value)


@router.get("/rapports")
async def reports_page(
    request: Request,
    services: ServicesDep,
    filters: Annotated[ReportFilters, Query()],
    report: str = "summary",
    rebuilt: int = 0,
) -> Response:
    actor = require_actor(request)
    # Staff get the customer picker (a typed name is resolved here; one that designates no single customer leaves
    # the report unfiltered, with the message above it); clients keep the short list the reports service gives.
    customer = await customer_picker.resolve(services, actor, request.query_params)
    rpc_filters = filters.to_rpc()
    rpc_filters.pop("customer_id", None)
    if customer.customer_id:
        rpc_filters["customer_id"] = customer.customer_id
    page = await services.call(
        "reports", "report_page", actor=actor, report=report, filters=rpc_filters, customer_search=True
    )
    current = page["report"]
    if customer.customer_id and not customer.name and page["options"].get("customer_search"):
        customer.name = await customer_picker.customer_name(services, actor, customer.customer_id)
    query = {key: value for key, value in current["filters"].items() if value}
    # The other reports' links keep the picker's text, so that they need no lookup of the customer's name.
    shown = {}
    if customer.customer_id and customer.name:
        shown = {"customer_name": customer.name, "customer_label": customer.name}
    return render_page(
        request,
        "reports.html",
        {
            "page": page,
            "report": current,
            "chart": chart_for(current),
            "filters": current["filters"],
            "customer": customer,
            "query": urlencode(query | shown),
            "export_query": urlencode({**query, "separator": "semicolon"}),
            "export_query_comma": urlencode({**query, "separator": "comma"}),
            "format_cell": _number_fr,
            "rebuilt": bool(rebuilt),
        },
    )


@router.post("/rapports/reconstruire")
async def rebuild(
    request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call("reports", "request_rebuild", actor=actor),
        # The reports page has no place for a refusal; the service's own (403) goes to the access-denied page, so
        # what comes here is the expired form.
        on_error=lambda message, status: render_page(
            request, "error.html", {"title": "Formulaire expiré", "message": message}, status
        ),
        on_success=lambda _: RedirectResponse("/rapports?rebuilt=1", status_code=303),
        propagate=(403,),
    )

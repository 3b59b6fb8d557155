"""The gateway's use of the RPC client: one per process, and remote errors turned into HTTP answers."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from comptoir_common.errors import STATUS_BY_ERROR_NAME
from comptoir_common.rpc_client import RemoteError, RpcClient, ServiceTimeout, ServiceUnavailable
from fastapi import Depends, HTTPException, Request

log = logging.getLogger(__name__)


class Services:
    """``await services.call("tickets", "get_ticket", actor=..., ticket_id=...)`` with HTTP-shaped errors."""

    def __init__(self, client: RpcClient):
        self.client = client

    async def call(self, service: str, method: str, **kwargs: Any) -> Any:
        try:
            return await self.client.call(service, method, **kwargs)
        except RemoteError as exc:
            status = STATUS_BY_ERROR_NAME.get(exc.exc_type)
            if status is None:
                log.error("service %s.%s failed: %s", service, method, exc)
                raise HTTPException(
                    500, "Une erreur interne est survenue. L'équipe technique a été prévenue."
                ) from exc
            detail: Any = exc.message if not exc.details else {"message": exc.message, **exc.details}
            raise HTTPException(status, detail) from exc
        except ServiceTimeout as exc:
            log.warning("service %s.%s timed out", service, method)
            raise HTTPException(
                504, "Le service ne répond pas pour le moment. Réessayez dans un instant."
            ) from exc
        except ServiceUnavailable as exc:
            log.warning("service %s unavailable: %s", service, exc)
            raise HTTPException(
                503, "Le service est momentanément indisponible. Réessayez dans un instant."
            ) from exc


async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]

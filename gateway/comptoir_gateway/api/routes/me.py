"""My account: profile, password, second factor, trusted browsers."""

from __future__ import annotations

from fastapi import APIRouter, Request

from comptoir_gateway.api.account_schemas import PasswordChangeIn, ProfileIn, TwoFactorIn
from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import ClientInfo, CurrentActor

router = APIRouter(prefix="/me", tags=["me"])


@router.get("/profile")
async def profile(actor: CurrentActor, services: ServicesDep) -> dict:
    """My account, open sessions and trusted browsers."""
    return await services.call("auth", "get_profile", actor=actor)


@router.patch("/profile")
async def update_profile(
    body: ProfileIn, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> dict:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    return await services.call("auth", "update_profile", actor=actor, changes=changes, client=client)


@router.post("/password", status_code=204)
async def change_password(
    body: PasswordChangeIn, request: Request, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> None:
    """Change my password; my other sessions end."""
    await services.call(
        "auth",
        "change_password",
        actor=actor,
        current_password=body.current_password,
        new_password=body.new_password,
        session_id=request.state.session_id,
        client=client,
    )


@router.put("/two-factor")
async def set_two_factor(
    body: TwoFactorIn, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> dict:
    return await services.call("auth", "set_two_factor", actor=actor, enabled=body.enabled, client=client)


@router.delete("/trusted-devices", status_code=204)
async def revoke_all_devices(actor: CurrentActor, services: ServicesDep, client: ClientInfo) -> None:
    await services.call("auth", "revoke_trusted_devices", actor=actor, user_id=actor["id"], client=client)


@router.delete("/trusted-devices/{device_id}", status_code=204)
async def revoke_device(
    device_id: str, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> None:
    await services.call(
        "auth", "revoke_trusted_devices", actor=actor, user_id=actor["id"], device_id=device_id, client=client
    )

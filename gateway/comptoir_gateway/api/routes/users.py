"""User administration (admins only; the auth service enforces it), sign-up requests, audit log, security."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from comptoir_gateway.api.account_schemas import (
    RolePolicyIn,
    SignupApproveIn,
    SignupRejectIn,
    UserIn,
    UserOut,
    UserPage,
    UserPatch,
)
from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import ClientInfo, CurrentActor

router = APIRouter(tags=["users"])


@router.get("/users", response_model=UserPage)
async def list_users(
    actor: CurrentActor,
    services: ServicesDep,
    q: str | None = Query(None, max_length=200),
    role: Literal["admin", "agent", "sales", "client", "reseller"] | None = None,
    customer_id: str | None = Query(None, max_length=36),
    active: bool | None = None,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> dict:
    """Search (name, email, phone) and filter accounts."""
    return await services.call(
        "auth",
        "list_users",
        actor=actor,
        q=q,
        role=role,
        customer_id=customer_id,
        active=active,
        limit=limit,
        offset=offset,
    )


@router.post("/users", response_model=UserOut, status_code=201)
async def create_user(body: UserIn, actor: CurrentActor, services: ServicesDep, client: ClientInfo) -> dict:
    """Create an account of any role; the person is mailed a single-use link to choose a password."""
    return await services.call("auth", "create_user", actor=actor, fields=body.model_dump(), client=client)


@router.get("/users/{user_id}")
async def get_user(user_id: str, actor: CurrentActor, services: ServicesDep) -> dict:
    """An account with its open sessions and trusted browsers."""
    return await services.call("auth", "get_user", actor=actor, user_id=user_id)


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(
    user_id: str, body: UserPatch, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> dict:
    """Edit an account; a new role, company or email ends the person's sessions."""
    changes = body.model_dump(exclude_unset=True)
    return await services.call(
        "auth", "update_user", actor=actor, user_id=user_id, changes=changes, client=client
    )


@router.post("/users/{user_id}/deactivate", response_model=UserOut)
async def deactivate_user(
    user_id: str, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> dict:
    """Lock the person out at once (open sessions are refused within a second)."""
    return await services.call("auth", "deactivate_user", actor=actor, user_id=user_id, client=client)


@router.post("/users/{user_id}/reactivate", response_model=UserOut)
async def reactivate_user(
    user_id: str, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> dict:
    return await services.call("auth", "reactivate_user", actor=actor, user_id=user_id, client=client)


@router.post("/users/{user_id}/invitation", response_model=UserOut)
async def resend_invitation(
    user_id: str, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> dict:
    """Mail a new invitation link (the previous one stops working)."""
    return await services.call("auth", "resend_invitation", actor=actor, user_id=user_id, client=client)


@router.post("/users/{user_id}/sessions/revoke")
async def revoke_sessions(
    user_id: str, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> dict:
    return await services.call("auth", "revoke_user_sessions", actor=actor, user_id=user_id, client=client)


@router.post("/users/{user_id}/trusted-devices/revoke")
async def revoke_devices(
    user_id: str, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> dict:
    return await services.call("auth", "revoke_trusted_devices", actor=actor, user_id=user_id, client=client)


@router.get("/signup-requests")
async def list_signups(
    actor: CurrentActor,
    services: ServicesDep,
    status: Literal["pending", "approved", "rejected"] | None = "pending",
) -> list:
    return await services.call("auth", "list_signups", actor=actor, status=status)


@router.post("/signup-requests/{request_id}/approve")
async def approve_signup(
    request_id: str, body: SignupApproveIn, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> dict:
    """Create the client account tied to ``customer_id``; the person gets the invitation."""
    return await services.call(
        "auth",
        "approve_signup",
        actor=actor,
        request_id=request_id,
        customer_id=body.customer_id,
        role=body.role,
        client=client,
    )


@router.post("/signup-requests/{request_id}/reject")
async def reject_signup(
    request_id: str, body: SignupRejectIn, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> dict:
    return await services.call(
        "auth", "reject_signup", actor=actor, request_id=request_id, note=body.note, client=client
    )


@router.get("/audit")
async def list_audit(
    actor: CurrentActor,
    services: ServicesDep,
    user_id: str | None = None,
    kind: str | None = Query(None, max_length=50),
    q: str | None = Query(None, max_length=200),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> dict:
    """The audit log, newest first."""
    return await services.call(
        "auth", "list_audit", actor=actor, user_id=user_id, kind=kind, q=q, limit=limit, offset=offset
    )


@router.get("/security/role-policies")
async def role_policies(actor: CurrentActor, services: ServicesDep) -> list:
    return await services.call("auth", "get_role_policies", actor=actor)


@router.put("/security/role-policies/{role}")
async def set_role_policy(
    role: str, body: RolePolicyIn, actor: CurrentActor, services: ServicesDep, client: ClientInfo
) -> list:
    """Enforce (or not) the second factor for every account of ``role``."""
    return await services.call(
        "auth",
        "set_role_policy",
        actor=actor,
        role=role,
        two_factor_required=body.two_factor_required,
        client=client,
    )


@router.get("/security/locks")
async def locks(actor: CurrentActor, services: ServicesDep) -> list:
    """Accounts and addresses locked by brute-force limits now."""
    return await services.call("auth", "list_locks", actor=actor)


@router.delete("/security/locks/{key:path}", status_code=204)
async def clear_lock(key: str, actor: CurrentActor, services: ServicesDep, client: ClientInfo) -> None:
    await services.call("auth", "clear_lock", actor=actor, key=key, client=client)

"""Request and response shapes of the account API (sign-in, users, sign-up requests, audit)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Role = Literal["admin", "agent", "sales", "client", "reseller"]


class LoginIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class LoginOut(BaseModel):
    """Either a token, or ``second_factor_required`` with the ``challenge_id`` to send the mailed code to."""

    access_token: str | None = None
    token_type: str = "bearer"
    expires_in: int | None = None
    second_factor_required: bool = False
    challenge_id: str | None = None
    email_hint: str | None = None


class CodeIn(BaseModel):
    challenge_id: str = Field(min_length=10, max_length=100)
    code: str = Field(min_length=1, max_length=20)


class ChallengeIn(BaseModel):
    challenge_id: str = Field(min_length=10, max_length=100)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    id: str
    email: str | None
    name: str | None
    role: str
    customer_id: str | None


class MessageOut(BaseModel):
    message: str


class EmailIn(BaseModel):
    email: str = Field(min_length=1, max_length=320)


class PasswordResetIn(BaseModel):
    token: str = Field(min_length=10, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class TwoFactorIn(BaseModel):
    enabled: bool


class ProfileIn(BaseModel):
    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=50)
    language: Literal["fr", "en"] | None = None


class UserIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    name: str = Field(min_length=1, max_length=200)
    role: Role
    phone: str | None = Field(None, max_length=50)
    customer_id: str | None = Field(None, max_length=36)
    language: Literal["fr", "en"] = "fr"


class UserPatch(BaseModel):
    email: str | None = Field(None, min_length=3, max_length=320)
    name: str | None = Field(None, min_length=1, max_length=200)
    role: Role | None = None
    phone: str | None = Field(None, max_length=50)
    customer_id: str | None = Field(None, max_length=36)
    language: Literal["fr", "en"] | None = None


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    phone: str | None
    role: str
    customer_id: str | None
    language: str
    active: bool
    created_at: str
    updated_at: str
    two_factor_enabled: bool
    password_set: bool
    last_login_at: str | None


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class SignupIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    name: str = Field(min_length=1, max_length=200)
    company: str = Field("", max_length=200)
    phone: str | None = Field(None, max_length=50)
    message: str = Field("", max_length=5000)


class SignupApproveIn(BaseModel):
    customer_id: str = Field(min_length=1, max_length=36)
    role: Literal["client", "reseller"] = "client"


class SignupRejectIn(BaseModel):
    note: str = Field("", max_length=2000)


class RolePolicyIn(BaseModel):
    two_factor_required: bool

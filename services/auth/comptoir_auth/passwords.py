"""Password hashing with argon2id, and the password policy.

Parameters: 19 MiB of memory, 4 passes, 1 lane — twice the passes of the OWASP Password Storage Cheat Sheet's
minimum argon2id configuration (19 MiB, 2 passes) — which costs about 50 ms of CPU per hash on this kind of machine
(``bench/login.py`` measures it).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from comptoir_common.errors import InvalidInput

_hasher = PasswordHasher(time_cost=4, memory_cost=19 * 1024, parallelism=1)

# Verified against when the account does not exist, so that an unknown email costs the same time as a wrong
# password and login timing does not reveal which addresses have accounts.
_DUMMY_HASH = _hasher.hash("comptoir-timing-equaliser")

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
_TRAILING_NOISE = re.compile(r"[\d\W_]+$")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; always spends one hash verification, even without a hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def spend_one_verification() -> None:
    """Cost the same as checking a password, for paths that must not be faster when an account is unknown."""
    verify_password(None, "comptoir")


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = (Path(__file__).parent / "common_passwords.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def check_password_policy(password: str, *, email: str | None = None, name: str | None = None) -> None:
    """Refuse short, over-long and common passwords with a French message saying why."""
    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Le mot de passe doit contenir au moins {MIN_PASSWORD_LENGTH} caractères.",
            {"field": "password"},
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Le mot de passe ne doit pas dépasser {MAX_PASSWORD_LENGTH} caractères.", {"field": "password"}
        )
    lowered = password.lower()
    core = _TRAILING_NOISE.sub("", lowered)
    common = common_passwords()
    if lowered in common or core in common or len(set(lowered)) <= 2:
        raise InvalidInput(
            "Ce mot de passe est trop courant et facile à deviner. Choisissez-en un autre, par exemple une "
            "phrase de plusieurs mots.",
            {"field": "password"},
        )
    for personal in (email or "", name or ""):
        if personal and len(personal) >= 4 and personal.lower().replace(" ", "") in lowered.replace(" ", ""):
            raise InvalidInput(
                "Le mot de passe ne doit pas contenir votre adresse e-mail ni votre nom.",
                {"field": "password"},
            )

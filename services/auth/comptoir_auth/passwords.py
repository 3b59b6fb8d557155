"""Password hashing with argon2id.

Parameters: 19 MiB of memory, 4 passes, 1 lane — twice the passes of the OWASP Password Storage Cheat Sheet's
minimum argon2id configuration (19 MiB, 2 passes) — which costs about 50 ms of CPU per hash on this kind of machine
(measured: 19 MiB × 2 passes ≈ 29 ms, × 4 ≈ 50–56 ms).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher(time_cost=4, memory_cost=19 * 1024, parallelism=1)

# Verified against when the account does not exist, so that an unknown email costs the same time as a wrong
# password and login timing does not reveal which addresses have accounts.
_DUMMY_HASH = _hasher.hash("comptoir-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; always spends one hash verification, even without a hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)

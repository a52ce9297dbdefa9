"""Password hashing with argon2id (argon2-cffi: the maintained binding of the reference
implementation, with OWASP's recommended parameters as its defaults) and the password rule."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ticketflow.errors import RuleViolation

MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
_decoy: str | None = None
_decoy_lock = threading.Lock()


def _decoy_hash() -> str:
    """Verified against when the account does not exist, so an unknown name costs as long as a wrong password.
    Hashed at the first sign-in, not at import (every CLI command imports this module: ~0.2 s of CPU each)."""
    global _decoy
    if _decoy is None:
        with _decoy_lock:
            if _decoy is None:
                _decoy = _hasher.hash("ticketflow decoy password")
    return _decoy


class WeakPassword(RuleViolation):
    """The password breaks the rule (too short, too long, or the sign-in name)."""

    code = "weak_password"


def check_rule(password: str, username: str) -> None:
    """Refuse passwords a desk should not accept (length, the sign-in name itself)."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")
    if password.strip().lower() == username.lower():
        raise WeakPassword("a password may not be the sign-in name")
    if len(set(password)) < MIN_DISTINCT or _is_run(password):
        raise WeakPassword("a password needs several different characters, not a repeat or a run like 1234567890")


#: Characters a password must have at least this many different ones of.
MIN_DISTINCT = 5


def _is_run(password: str) -> bool:
    """A sequence going up or down one code point at a time (1234567890, abcdefghij, 9876543210)."""
    steps = {ord(b) - ord(a) for a, b in zip(password, password[1:])}
    return steps <= {1, -9} or steps <= {-1, 9}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no stored hash, spends the same time and answers no."""
    decoy = _decoy_hash()  # made at the first sign-in whatever the name: it takes no longer for an unknown one
    try:
        return _hasher.verify(stored_hash or decoy, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)

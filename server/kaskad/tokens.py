"""API tokens: random secrets with a role, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timezone
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaskad.store.models import ApiToken

Role = Literal["admin", "marketer", "integrator"]
ROLES: tuple[str, ...] = ("admin", "marketer", "integrator")
PREFIX = "ksk_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, role: str, name: str = "", token: str | None = None) -> str:
    """Store a new token (or the given one) and return it; it cannot be read back later."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    token = token or PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name or role, role=role, token_hash=hash_token(token)))
    return token


def ensure_token(session: Session, token: str, role: str, name: str) -> None:
    """Make sure ``token`` exists with ``role`` (used for KASKAD_ADMIN_TOKEN)."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        create_token(session, role, name, token)
    elif row.role != role or row.revoked_at is not None:
        row.role, row.revoked_at = role, None


def role_of(session: Session, token: str) -> str | None:
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    )
    return row.role if row else None


def revoke(session: Session, token: str) -> bool:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        return False
    row.revoked_at = datetime.now(timezone.utc)
    return True

"""``kaskad db upgrade`` and ``kaskad token create|revoke``."""

from __future__ import annotations

import sys

from kaskad.config import Settings
from kaskad.tokens import ROLES


def db_upgrade(args) -> int:
    from kaskad.migrations import upgrade

    settings = Settings.from_env()
    upgrade(settings.db_url)
    print(f"database is at the newest schema ({settings.db_url.split('@')[-1]})")
    return 0


def token_create(args) -> int:
    from kaskad import tokens
    from kaskad.runtime import Runtime
    from kaskad.store.engine import transaction

    runtime = Runtime.create(registry=_no_plugins())
    with transaction(runtime.sessions) as session:
        token = tokens.create_token(session, args.role, args.name or "")
    print(token)
    return 0


def token_revoke(args) -> int:
    from kaskad import tokens
    from kaskad.runtime import Runtime
    from kaskad.store.engine import transaction

    runtime = Runtime.create(registry=_no_plugins())
    with transaction(runtime.sessions) as session:
        found = tokens.revoke(session, args.token)
    if not found:
        print("no such token", file=sys.stderr)
        return 1
    return 0


def _no_plugins():
    from kaskad.plugins.manager import Registry

    return Registry()


def add_commands(sub) -> None:
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", metavar="ACTION")
    db.add_parser("upgrade", help="apply migrations up to the newest schema").set_defaults(func=db_upgrade)

    tok = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_command", metavar="ACTION")
    create = tok.add_parser("create", help="create a token and print it (it is stored hashed)")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", help="a label for the token")
    create.set_defaults(func=token_create)
    revoke = tok.add_parser("revoke", help="revoke a token")
    revoke.add_argument("token")
    revoke.set_defaults(func=token_revoke)

"""pytest fixtures for Kaskad and plugin tests: ``pytest_plugins = ["kaskad.testing.fixtures"]``.

- ``postgres``: a real PostgreSQL server for the session, with a migrated template database.
- ``redis_server``: a real redis-server for the session.
- ``db_url``: a fresh, migrated database per test, parametrised over SQLite and PostgreSQL.
- ``runtime``: a :class:`kaskad.runtime.Runtime` on ``db_url`` with all plugins loaded.
- ``client`` / ``api``: a Litestar test client, and a helper that adds a token of a given role.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from kaskad.testing.servers import PostgresServer, RedisServer

_counter = itertools.count()
TEMPLATE_DB = "kaskad_template"


@pytest.fixture(autouse=True)
def _segments_defined_in_process():
    """Segments a test registers with ``kaskad.segments.define`` are gone after it: the registry is
    process-wide, and a leftover definition would take part in another test's membership passes."""
    from kaskad.segments.definitions import DEFINED

    before = dict(DEFINED)
    yield
    DEFINED.clear()
    DEFINED.update(before)


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer().start()
    try:
        from kaskad.migrations import upgrade

        upgrade(server.create_database(TEMPLATE_DB))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    from kaskad.migrations import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, sqlite_template) -> str:
    """A fresh migrated database for one test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "kaskad.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t{next(_counter)}_{abs(hash(request.node.nodeid)) % 10**8}", template=TEMPLATE_DB)


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    path = tmp_path / "kaskad.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def pg_url(postgres) -> str:
    return postgres.create_database(f"p{next(_counter)}", template=TEMPLATE_DB)


def make_runtime(db_url: str, home: Path, **settings):
    from kaskad.config import Settings
    from kaskad.runtime import Runtime

    return Runtime.create(Settings(home=home, database_url=db_url, **settings), migrate=False)


@pytest.fixture
def runtime(db_url, tmp_path):
    rt = make_runtime(db_url, tmp_path)
    yield rt
    rt.close()


class Api:
    """A test client that signs requests with a token of the chosen role."""

    def __init__(self, client, runtime):
        self.client = client
        self.runtime = runtime
        self._tokens: dict[str, str] = {}

    def token(self, role: str = "admin") -> str:
        if role not in self._tokens:
            from kaskad import tokens
            from kaskad.store.engine import transaction

            with transaction(self.runtime.sessions) as session:
                self._tokens[role] = tokens.create_token(session, role, f"test {role}")
        return self._tokens[role]

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}

    def request(self, method: str, path: str, role: str = "admin", **kw):
        headers = {**self.headers(role), **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def get(self, path, role="admin", **kw):
        return self.request("GET", path, role, **kw)

    def post(self, path, role="admin", **kw):
        return self.request("POST", path, role, **kw)

    def put(self, path, role="admin", **kw):
        return self.request("PUT", path, role, **kw)

    def delete(self, path, role="admin", **kw):
        return self.request("DELETE", path, role, **kw)


@pytest.fixture
def client(runtime):
    from litestar.testing import TestClient

    from kaskad.api.app import create_app

    with TestClient(create_app(runtime)) as c:
        yield c


@pytest.fixture
def api(client, runtime) -> Api:
    return Api(client, runtime)

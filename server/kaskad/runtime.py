"""The runtime: settings, database, plugins — what the API, the worker and the CLI share."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kaskad.config import Settings
from kaskad.plugins.manager import Registry, load_registry
from kaskad.store.engine import make_engine, make_sessionmaker


@dataclass
class Runtime:
    settings: Settings
    registry: Registry
    engine: Engine
    sessions: sessionmaker[Session]
    #: Feature areas keep long-lived helpers here (broker, scheduler…), by name.
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A channel that keeps its own state in the database (web push subscriptions,
        # wallet cards) defines ``bind(runtime)``; it gets this runtime once, here.
        for channel in self.registry.channels.values():
            bind = getattr(channel, "bind", None)
            if callable(bind):
                bind(self)

    @classmethod
    def create(cls, settings: Settings | None = None, registry: Registry | None = None, migrate: bool = True) -> "Runtime":
        settings = settings or Settings.from_env()
        if migrate:
            from kaskad.migrations import upgrade

            upgrade(settings.db_url)
        engine = make_engine(settings.db_url)
        runtime = cls(
            settings=settings,
            registry=registry or load_registry(settings.load_plugins),
            engine=engine,
            sessions=make_sessionmaker(engine),
        )
        from kaskad.channels.settings import configure_channels

        configure_channels(runtime)
        return runtime

    @cached_property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        self.engine.dispose()

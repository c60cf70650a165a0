"""The migrations create exactly the tables the models describe, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from kaskad.store.metadata import metadata


def test_models_and_migrations_agree(db_url):
    engine = create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    # Server-default spelling differs harmlessly between dialects; anything else is a missing migration.
    diff = [d for d in diff if not (isinstance(d, list) and d and d[0][0] == "modify_default")]
    assert diff == [], f"a model changed without a migration (add one under kaskad/migrations/versions): {diff}"

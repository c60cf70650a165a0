"""Flow plans are cached per database: version ids are row ids and repeat across databases."""

from __future__ import annotations

import shutil

from sqlalchemy import text

from kaskad.engine.plan import plan_for_version
from kaskad.testing.fixtures import make_runtime

from .journeys import EXIT, flow_doc, publish


def test_same_version_id_in_two_databases_gives_each_its_own_plan(runtime, sqlite_template, tmp_path):
    shutil.copy(sqlite_template, tmp_path / "other.db")
    other = make_runtime(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other")
    try:
        publish(runtime, flow_doc("first", [EXIT]))
        publish(other, flow_doc("second", [{"id": "pause", "kind": "wait", "for": "P1D", "next": "end"}, EXIT]))
        with runtime.sessions() as a, other.sessions() as b:
            vid = a.scalar(text("SELECT id FROM flow_versions"))
            assert b.scalar(text("SELECT id FROM flow_versions")) == vid
            assert plan_for_version(a, vid).key == "first"
            assert plan_for_version(b, vid).key == "second"
            assert plan_for_version(a, vid).key == "first"
    finally:
        other.close()

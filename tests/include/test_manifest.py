from __future__ import annotations

from sparkify.manifest import diff, read, record
from tests.fakes import FakeCursor, Result


def test_diff_splits_new_changed_removed_and_unchanged():
    listed = {"a.json": "1", "b.json": "2-new", "c.json": "3"}
    manifest = {"a.json": "1", "b.json": "2", "gone.json": "9"}
    plan = diff(listed, manifest)
    assert plan.changed == ["b.json", "c.json"]
    assert plan.removed == ["gone.json"]
    assert plan.unchanged == 1
    assert plan.stale == ["b.json", "c.json", "gone.json"]


def test_diff_of_an_empty_manifest_loads_everything():
    plan = diff({"b": "2", "a": "1"}, {})
    assert (plan.changed, plan.removed, plan.unchanged) == (["a", "b"], [], 0)


def test_read_and_record_use_the_manifest_table():
    cursor = FakeCursor(lambda sql, params: Result(rows=[("a.json", "1")]))
    assert read(cursor, '"public"."m"', "staging_songs") == {"a.json": "1"}
    record(cursor, '"public"."m"', "staging_songs", {"b.json": "2"}, forget=["b.json"])
    statements = [call[0] for call in cursor.executed]
    assert statements[0].startswith('SELECT source_key, etag FROM "public"."m"')
    assert statements[1].endswith("AND source_key = ANY(%(keys)s)")
    assert cursor.executed[1][1] == {"table_name": "staging_songs", "keys": ["b.json"]}
    ((insert, rows),) = cursor.executemany_calls
    assert insert.startswith('INSERT INTO "public"."m" (table_name, source_key, etag, loaded_at)')
    assert [row[:3] for row in rows] == [("staging_songs", "b.json", "2")]

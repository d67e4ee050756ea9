"""Tests for dev.sample_data: layout, determinism and every quirk of the real data.

Each check reads the generated files back; nothing trusts the generator's internals.
"""

from __future__ import annotations

import calendar
import itertools
import json
import os
import pathlib
import re
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from dev.sample_data import DEFAULT_SPEC, GeneratedSummary, SampleSpec, generate, main

REPO = pathlib.Path(__file__).resolve().parents[2]
SMALL = SampleSpec(
    start=date(2019, 12, 30), days=3, songs=40, events_per_day=(120, 200), users=12, seed=7
)
SONG_KEYS = [
    "num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location",
    "artist_name", "song_id", "title", "duration", "year",
]  # fmt: skip
EVENT_KEYS = [
    "artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level",
    "location", "method", "page", "registration", "sessionId", "song", "status", "ts",
    "userAgent", "userId",
]  # fmt: skip
PAGES = {
    "NextSong", "Home", "Login", "Logout", "Downgrade", "Settings", "Help", "About", "Upgrade",
    "Save Settings", "Error", "Submit Upgrade", "Submit Downgrade",
}  # fmt: skip
PERSONAL = ("firstName", "lastName", "gender", "registration", "userAgent")
DAY_MS = 86_400_000


@dataclass
class Output:
    """Generated files, parsed back."""

    root: pathlib.Path
    spec: SampleSpec
    summary: GeneratedSummary
    songs: list[tuple[pathlib.Path, str, dict]]  # (path, raw text, object)
    logs: dict[date, tuple[pathlib.Path, str, list[dict]]]  # day -> (path, raw text, events)

    @property
    def events(self) -> list[dict]:
        return [event for _, _, events in self.logs.values() for event in events]

    @property
    def plays(self) -> list[dict]:
        return [event for event in self.events if event["page"] == "NextSong"]


def _read(root: pathlib.Path, spec: SampleSpec, summary: GeneratedSummary) -> Output:
    songs = []
    for path in sorted((root / "song_data").rglob("*.json")):
        raw = path.read_text(encoding="utf-8")
        songs.append((path, raw, json.loads(raw)))
    logs = {}
    for path in sorted((root / "log_data").rglob("*.json")):
        raw = path.read_text(encoding="utf-8")
        day = date.fromisoformat(path.name.removesuffix("-events.json"))
        logs[day] = (path, raw, [json.loads(line) for line in raw.splitlines()])
    return Output(root, spec, summary, songs, logs)


@pytest.fixture(scope="module", params=[DEFAULT_SPEC, SMALL], ids=["default", "small"])
def out(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Output:
    root = tmp_path_factory.mktemp("sample")
    return _read(root, request.param, generate(root, request.param))


@pytest.fixture(scope="module")
def default_out(tmp_path_factory: pytest.TempPathFactory) -> Output:
    root = tmp_path_factory.mktemp("default")
    return _read(root, DEFAULT_SPEC, generate(root))


def _tree(root: pathlib.Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _day_bounds(day: date) -> tuple[int, int]:
    start = calendar.timegm(day.timetuple()) * 1000
    return start, start + DAY_MS


# ------------------------------------------------------------------ determinism


def test_same_spec_gives_byte_identical_output(tmp_path: pathlib.Path) -> None:
    first, second = _tree_of(tmp_path / "a", SMALL), _tree_of(tmp_path / "b", SMALL)
    assert first and first == second


def test_different_seed_gives_different_output(tmp_path: pathlib.Path) -> None:
    other = SampleSpec(**{**SMALL.__dict__, "seed": SMALL.seed + 1})
    first, second = _tree_of(tmp_path / "a", SMALL), _tree_of(tmp_path / "b", other)
    assert first != second
    logs = [name for name in first if name.startswith("log_data")]
    assert any(first[name] != second.get(name) for name in logs)


def test_output_does_not_depend_on_hash_seed(tmp_path: pathlib.Path) -> None:
    expected = _tree_of(tmp_path / "in-process", SMALL)
    for hash_seed in ("0", "12345"):
        target = tmp_path / f"hash-{hash_seed}"
        subprocess.run(
            [sys.executable, "-m", "dev.sample_data", "--out", str(target),
             "--start", SMALL.start.isoformat(), "--days", str(SMALL.days),
             "--songs", str(SMALL.songs), "--events-per-day", *map(str, SMALL.events_per_day),
             "--users", str(SMALL.users), "--seed", str(SMALL.seed)],
            cwd=REPO, env={**os.environ, "PYTHONHASHSEED": hash_seed}, check=True,
            capture_output=True,
        )  # fmt: skip
        assert _tree(target) == expected


def _tree_of(root: pathlib.Path, spec: SampleSpec) -> dict[str, bytes]:
    generate(root, spec)
    return _tree(root)


# ------------------------------------------------------------------ summary, CLI, spec


def test_summary_counts_equal_the_files(out: Output) -> None:
    s = out.summary
    assert s.song_files == len(out.songs) == out.spec.songs
    assert s.log_files == len(out.logs) == out.spec.days
    assert s.events == len(out.events)
    assert s.plays == len(out.plays)
    assert s.first_day == out.spec.start == min(out.logs)
    assert s.last_day == out.spec.start + timedelta(days=out.spec.days - 1) == max(out.logs)


def test_default_spec_is_a_month_like_the_real_one(default_out: Output) -> None:
    assert default_out.spec == SampleSpec()
    assert default_out.summary.log_files == 30
    assert 5_000 <= default_out.summary.events <= 11_000


def test_cli_writes_and_prints_one_line(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--out", str(tmp_path), "--days", "2", "--songs", "10"]
    code = main([*args, "--events-per-day", "30", "40", "--users", "4", "--seed", "3"])
    printed = capsys.readouterr().out
    assert code == 0
    assert printed.count("\n") == 1
    assert "10 song files" in printed and "2 log files" in printed
    assert len(list((tmp_path / "song_data").rglob("*.json"))) == 10
    assert len(list((tmp_path / "log_data").rglob("*.json"))) == 2


def test_cli_rejects_an_invalid_spec(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--out", str(tmp_path), "--days", "0"]) == 2
    assert "error" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "changes",
    [{"days": 0}, {"songs": 0}, {"users": 0}, {"events_per_day": (0, 5)},
     {"events_per_day": (9, 5)}, {"match_ratio": 1.5}, {"match_ratio": -0.1}],
)  # fmt: skip
def test_spec_rejects_impossible_values(changes: dict) -> None:
    with pytest.raises(ValueError):
        SampleSpec(**changes)


def test_small_spec_is_fast(tmp_path: pathlib.Path) -> None:
    began = time.perf_counter()
    generate(tmp_path, SMALL)
    assert time.perf_counter() - began < 2.0


# ------------------------------------------------------------------ song_data


def test_song_files_follow_the_track_id_layout(out: Output) -> None:
    for path, _, _ in out.songs:
        parts = path.relative_to(out.root).parts
        assert len(parts) == 5 and parts[0] == "song_data"
        assert re.fullmatch(r"TR[A-Z0-9]{16}\.json", parts[4])
        assert "".join(parts[1:4]) == parts[4][2:5]
        assert all(re.fullmatch(r"[A-Z]", letter) for letter in parts[1:4])


def test_song_file_is_one_object_on_one_line_with_the_real_keys(out: Output) -> None:
    for _, raw, song in out.songs:
        assert "\n" not in raw and raw.startswith("{") and raw.endswith("}")
        assert list(song) == SONG_KEYS


def test_song_field_types_and_ids(out: Output) -> None:
    for _, _, s in out.songs:
        assert type(s["num_songs"]) is int
        assert re.fullmatch(r"AR[A-Z0-9]{16}", s["artist_id"])
        assert re.fullmatch(r"SO[A-Z0-9]{16}", s["song_id"])
        assert (s["artist_latitude"] is None) == (s["artist_longitude"] is None)
        for key in ("artist_latitude", "artist_longitude"):
            assert s[key] is None or type(s[key]) is float
        assert isinstance(s["artist_location"], str)
        assert isinstance(s["artist_name"], str) and s["artist_name"]
        assert isinstance(s["title"], str) and s["title"]
        assert type(s["duration"]) is float and s["duration"] > 0
        assert round(s["duration"], 5) == s["duration"]
        assert type(s["year"]) is int and (s["year"] == 0 or 1900 <= s["year"] <= 2025)
    assert len({s["song_id"] for _, _, s in out.songs}) == len(out.songs)


def test_more_than_half_of_songs_lack_year_and_coordinates(out: Output) -> None:
    songs = [s for _, _, s in out.songs]
    assert sum(s["year"] == 0 for s in songs) > len(songs) / 2
    assert sum(s["artist_latitude"] is None for s in songs) > len(songs) / 2
    assert any(s["year"] != 0 for s in songs)
    assert any(s["artist_latitude"] is not None for s in songs)
    assert any(s["artist_location"] == "" for s in songs)
    assert any(s["artist_location"] != "" for s in songs)


def test_names_carry_non_ascii_and_punctuation(default_out: Output) -> None:
    names = [s[key] for _, _, s in default_out.songs for key in ("artist_name", "title")]
    text = "".join(names)
    assert any(ord(char) > 127 for char in text)
    for char in "&;'\"":
        assert char in text, char


def test_files_are_utf8_not_ascii_escaped(default_out: Output) -> None:
    raws = [raw for _, raw, _ in default_out.songs] + [r for _, r, _ in default_out.logs.values()]
    assert all("\\u" not in raw for raw in raws)
    assert any(any(ord(char) > 127 for char in raw) for raw in raws)


def test_some_names_are_as_long_as_the_real_ones(out: Output) -> None:
    songs = [s for _, _, s in out.songs]
    assert 80 <= max(len(s["artist_name"]) for s in songs) <= 100
    assert 130 <= max(len(s["title"]) for s in songs) <= 155


def test_artists_are_shared_and_differ_slightly_between_songs(out: Output) -> None:
    by_artist = defaultdict(list)
    for _, _, s in out.songs:
        by_artist[s["artist_id"]].append(s)
    shared = [songs for songs in by_artist.values() if len(songs) > 1]
    assert shared
    fields = ("artist_name", "artist_location", "artist_latitude", "artist_longitude")
    assert any(len({tuple(s[f] for f in fields) for s in songs}) > 1 for songs in shared)


# ------------------------------------------------------------------ log_data layout


def test_one_log_file_per_day_named_after_it(out: Output) -> None:
    days = [out.spec.start + timedelta(days=i) for i in range(out.spec.days)]
    expected = [
        out.root / "log_data" / f"{d:%Y}" / f"{d:%m}" / f"{d.isoformat()}-events.json" for d in days
    ]
    assert [path for path, _, _ in out.logs.values()] == expected
    assert sorted(p for p in (out.root / "log_data").rglob("*") if p.is_file()) == expected


def test_log_files_are_ndjson_with_the_real_keys(out: Output) -> None:
    for _, raw, events in out.logs.values():
        assert raw.endswith("}\n") and "\n\n" not in raw
        assert max(len(line.encode()) for line in raw.splitlines()) < 1000
        for event in events:
            assert list(event) == EVENT_KEYS


def test_events_per_day_within_the_spec(out: Output) -> None:
    low, high = out.spec.events_per_day
    assert all(low <= len(events) <= high for _, _, events in out.logs.values())


def test_ts_is_epoch_ms_inside_the_day_of_its_file_and_sorted(out: Output) -> None:
    for day, (_, _, events) in out.logs.items():
        first, end = _day_bounds(day)
        stamps = [event["ts"] for event in events]
        assert all(type(ts) is int and first <= ts < end for ts in stamps)
        assert stamps == sorted(stamps)


# ------------------------------------------------------------------ event quirks


def test_event_field_types(out: Output) -> None:
    for e in out.events:
        assert e["auth"] in ("Logged In", "Logged Out")
        assert isinstance(e["userId"], str) and re.fullmatch(r"\d*", e["userId"])
        assert e["registration"] is None or type(e["registration"]) is float
        for key in ("sessionId", "itemInSession", "status"):
            assert type(e[key]) is int
        assert e["status"] in (200, 307, 404) and e["method"] in ("GET", "PUT")
        assert e["page"] in PAGES and e["level"] in ("free", "paid")


def test_method_and_status_fit_the_page(default_out: Output) -> None:
    seen = {(e["page"], e["method"], e["status"]) for e in default_out.events}
    assert ("NextSong", "PUT", 200) in seen and ("Home", "GET", 200) in seen
    for page, method, status in seen:
        assert (status == 404) == (page == "Error")
        assert status != 307 or method == "PUT"
    assert {status for _, _, status in seen} == {200, 307, 404}


def test_logged_out_rows_have_empty_user_and_null_personal_fields(out: Output) -> None:
    logged_out = [e for e in out.events if e["auth"] == "Logged Out"]
    assert logged_out
    for e in out.events:
        if e["auth"] == "Logged Out":
            assert e["userId"] == ""
            assert all(e[key] is None for key in PERSONAL)
        else:
            assert re.fullmatch(r"\d+", e["userId"])
            assert all(e[key] is not None for key in PERSONAL)
            assert type(e["registration"]) is float


def test_user_agent_is_wrapped_in_literal_double_quotes(out: Output) -> None:
    agents = {e["userAgent"] for e in out.events if e["userAgent"] is not None}
    assert agents
    for agent in agents:
        assert len(agent) > 2 and agent[0] == '"' and agent[-1] == '"' and '"' not in agent[1:-1]
    raw = next(iter(out.logs.values()))[1]
    assert '"userAgent":"\\"Mozilla/' in raw


def test_artist_song_length_only_on_next_song(out: Output) -> None:
    for e in out.events:
        if e["page"] == "NextSong":
            assert isinstance(e["artist"], str) and isinstance(e["song"], str)
            assert type(e["length"]) is float and e["length"] > 0
            assert e["auth"] == "Logged In"
        else:
            assert e["artist"] is None and e["song"] is None and e["length"] is None
    assert 0.78 <= len(out.plays) / len(out.events) <= 0.92
    assert len({e["page"] for e in out.events}) >= 6


def test_session_item_user_identifies_an_event(out: Output) -> None:
    keys = [(e["sessionId"], e["itemInSession"], e["userId"]) for e in out.events]
    assert len(set(keys)) == len(keys)
    by_session = defaultdict(list)
    for e in out.events:
        by_session[e["sessionId"]].append(e)
    for events in by_session.values():
        ordered = sorted(events, key=lambda e: e["itemInSession"])
        assert [e["ts"] for e in ordered] == sorted(e["ts"] for e in events)
        assert len({e["userId"] for e in events} - {""}) <= 1


def test_user_attributes_are_stable(out: Output) -> None:
    seen: dict[str, tuple] = {}
    for e in out.events:
        if e["userId"]:
            attrs = (e["firstName"], e["lastName"], e["gender"], e["location"])
            attrs += (e["registration"], e["userAgent"])
            assert seen.setdefault(e["userId"], attrs) == attrs


def test_users_change_level_during_the_month(out: Output) -> None:
    plays_by_user = defaultdict(list)
    for e in sorted(out.plays, key=lambda e: e["ts"]):
        plays_by_user[e["userId"]].append(e["level"])
    both = [levels for levels in plays_by_user.values() if len(set(levels)) == 2]
    assert len(both) >= 2
    assert any(levels[0] != levels[-1] for levels in both)


def test_level_changes_only_after_a_submit_page(out: Output) -> None:
    by_session = defaultdict(list)
    for e in out.events:
        by_session[e["sessionId"]].append(e)
    submits = 0
    for events in by_session.values():
        events.sort(key=lambda e: e["itemInSession"])
        for before, after in itertools.pairwise(events):
            if before["level"] != after["level"]:
                submits += 1
                wanted = "Submit Upgrade" if after["level"] == "paid" else "Submit Downgrade"
                assert before["page"] == wanted
    assert submits >= 2


def test_plays_share_a_ts_across_sessions(out: Output) -> None:
    sessions_by_ts = defaultdict(set)
    for e in out.plays:
        sessions_by_ts[e["ts"]].add(e["sessionId"])
    shared = sum(len(sessions) > 1 for sessions in sessions_by_ts.values())
    assert shared >= max(3, out.spec.days // 2)


def test_a_few_plays_match_a_song_exactly_and_most_do_not(out: Output) -> None:
    catalogue = {(s["title"], s["artist_name"], s["duration"]) for _, _, s in out.songs}
    artists = {s["artist_name"] for _, _, s in out.songs}
    matched = [p for p in out.plays if (p["song"], p["artist"], p["length"]) in catalogue]
    assert matched
    assert abs(len(matched) / len(out.plays) - out.spec.match_ratio) < 0.05
    unmatched = [p for p in out.plays if (p["song"], p["artist"], p["length"]) not in catalogue]
    assert all(p["artist"] not in artists for p in unmatched)


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_match_ratio_extremes(tmp_path: pathlib.Path, ratio: float) -> None:
    spec = SampleSpec(days=2, songs=25, events_per_day=(60, 80), users=6, match_ratio=ratio)
    result = _read(tmp_path, spec, generate(tmp_path, spec))
    catalogue = {(s["title"], s["artist_name"], s["duration"]) for _, _, s in result.songs}
    hits = [(p["song"], p["artist"], p["length"]) in catalogue for p in result.plays]
    assert result.plays and all(hit == bool(ratio) for hit in hits)


def test_logged_in_users_play_on_most_days_they_appear(out: Output) -> None:
    appears, plays = set(), set()
    for day, (_, _, events) in out.logs.items():
        for e in events:
            if e["userId"]:
                appears.add((day, e["userId"]))
                if e["page"] == "NextSong":
                    plays.add((day, e["userId"]))
    assert len(plays) / len(appears) >= 0.8

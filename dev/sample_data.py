"""Deterministic, seeded sample data in the exact layout and with the quirks of Sparkify's JSON.

Writes two datasets under one directory, as they sit in Sparkify's S3 bucket:

* ``song_data/A/B/C/TRABC<rest>.json``: one song per file, one JSON object on one line
  (the three letters after ``TR`` in the track id name the three folders).
* ``log_data/YYYY/MM/YYYY-MM-DD-events.json``: newline-delimited JSON, one file per UTC day,
  every ``ts`` inside that day, lines sorted by ``ts``.

Quirks reproduced (see ``shared/notes/sparkify-data-format.md``): null coordinates and
unknown years (``0``) for more than half of the songs, names with non-ASCII letters, ``&``,
``;``, apostrophes and double quotes, long names, artists shared by several songs whose
name/location/coordinates differ slightly between songs; events with camelCase keys, ``ts``
in epoch milliseconds, ``userId`` as a string (``""`` when logged out, with null personal
fields), ``userAgent`` wrapped in literal double quotes, ``artist``/``song``/``length`` only
on ``NextSong`` rows, users changing ``level`` during the month, plays sharing a ``ts`` in
different sessions, and only ``match_ratio`` of the plays matching a song on
(title, artist name, duration).

Output is byte-identical for the same :class:`SampleSpec` (independent of ``PYTHONHASHSEED``).
Events are produced and written one day at a time, so large data sets stream to disk.
Existing files with the same names are overwritten; nothing is deleted.

CLI::

    python -m dev.sample_data --out DIR [--start YYYY-MM-DD] [--days N]
        [--songs N] [--events-per-day MIN MAX] [--users N] [--match-ratio R] [--seed N]
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import json
import pathlib
import random
import string
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = ["DEFAULT_SPEC", "GeneratedSummary", "SampleSpec", "generate", "main"]

_DEFAULT_START = date(2018, 11, 1)
DAY_MS = 86_400_000

# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSpec:
    """What to generate. The defaults give a month shaped like the real data set."""

    start: date = _DEFAULT_START
    days: int = 30
    songs: int = 300  # number of song files
    events_per_day: tuple[int, int] = (15, 530)  # min/max events of one day
    users: int = 96
    match_ratio: float = 0.1  # share of plays matching a song on (title, artist, duration)
    seed: int = 42

    def __post_init__(self) -> None:
        """Reject specs that cannot produce the documented layout."""
        low, high = self.events_per_day
        if self.days < 1 or self.songs < 1 or self.users < 1:
            raise ValueError("days, songs and users must be at least 1")
        if not 1 <= low <= high:
            raise ValueError("events_per_day must be (min, max) with 1 <= min <= max")
        if not 0.0 <= self.match_ratio <= 1.0:
            raise ValueError("match_ratio must be between 0 and 1")


DEFAULT_SPEC = SampleSpec()


@dataclass(frozen=True)
class GeneratedSummary:
    """What :func:`generate` wrote."""

    song_files: int
    log_files: int
    events: int  # lines in all log files
    plays: int  # events with page == "NextSong"
    first_day: date
    last_day: date


def generate(out_dir: pathlib.Path, spec: SampleSpec = DEFAULT_SPEC) -> GeneratedSummary:
    """Write ``song_data/`` and ``log_data/`` for ``spec`` under ``out_dir``.

    The same spec always yields byte-identical files.
    """
    out_dir = pathlib.Path(out_dir)
    songs = _build_songs(_rng(spec.seed, "songs"), spec.songs)
    song_files = _write_songs(out_dir / "song_data", songs)
    picker = _PlayPicker(_rng(spec.seed, "plays"), songs, spec.match_ratio)
    users = _build_users(_rng(spec.seed, "users"), spec)
    events, plays = _write_logs(
        out_dir / "log_data", _rng(spec.seed, "events"), spec, users, picker
    )
    return GeneratedSummary(
        song_files=song_files,
        log_files=spec.days,
        events=events,
        plays=plays,
        first_day=spec.start,
        last_day=spec.start + timedelta(days=spec.days - 1),
    )


def _rng(seed: int, stream: str) -> random.Random:
    """An independent, reproducible random stream (str seeds are hashed with SHA-512)."""
    return random.Random(f"sparkify-sample:{seed}:{stream}")


# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------

_FIRST = (
    "Mike", "Dwight", "Carla", "Bran", "Ella", "Otis", "Nina", "Marvin", "Aretha", "Johnny",
    "Dolly", "Etta", "Sam", "Billie", "Curtis", "Janis", "Ray", "Patsy", "Chuck", "Loretta",
    "Björn", "Zoë", "José", "Noël", "Chloé", "Renée", "Søren", "François", "Łukasz", "Göran",
    "Iñigo", "Andrés", "Maïa", "Jürgen", "Ólafur", "Agnès", "Mónica", "Elena", "Tom", "Ani",
)  # fmt: skip
_LAST = (
    "Jones", "Yoakam", "Mello", "Simone", "Gaye", "Cash", "Parton", "James", "Cooke", "Holiday",
    "Mayfield", "Joplin", "Charles", "Cline", "Berry", "Lynn", "Müller", "Dvořák", "Núñez",
    "Ångström", "Sørensen", "Çelik", "Håkansson", "O'Brien", "O'Connor", "D'Angelo", "McKee",
    "Villeneuve", "Ruiz", "Kowalski", "Nakamura", "Okafor", "Ferreira", "Brontë", "Lévesque",
    "Paparizou", "Wilson", "Caliendo", "Mraz", "Difranco",
)  # fmt: skip
_PREFIX = ("DJ ", "MC ", "Lil' ", "Big ", "Young ", "Sister ", "Dr. ", "CJ_ ")
_NICK = ("Cleanhead", "Big Daddy", "Lightning", "Sugar", "Kid", "Professor", "Bébé", "Señor")
_ADJ = (
    "Black", "Electric", "Velvet", "Silver", "Broken", "Lonely", "Crimson", "Wild", "Golden",
    "Quiet", "Neon", "Frozen", "Holy", "Little", "Sonic", "Mighty", "Sweet", "Bitter", "Hollow",
    "Lucky", "Pâle", "Dreamy", "Blue", "Fröhliche",
)  # fmt: skip
_NOUN = (
    "Keys", "Wolves", "Kings", "Hearts", "Machines", "Rebels", "Strangers", "Shadows", "Ghosts",
    "Tigers", "Angels", "Comets", "Rivers", "Sparrows", "Pilots", "Horses", "Monks", "Sirens",
    "Cowboys", "Lovers", "Rêveurs", "Garçons", "Mädchen", "Niños",
)  # fmt: skip
_BANDS = (
    "Motörhead", "Sigur Rós", "Mötley Crüe", "Björk", "Les Négresses Vertes", "Café Tacvba",
    "Amadou & Mariam", "Earth; Wind & Fire", "Hüsker Dü", "Blue Öyster Cult", "Mägo de Oz",
    "Ñu", "Queensrÿche", "Þeyr", "Beyoncé", "Des'ree", "Guns N' Roses", "Sixpence None The Richer",
)  # fmt: skip
_PHRASES = (
    "I Didn't Mean To", "Soul Deep", "Amor De Cabaret", "Something Girls", "You're The One",
    "Don't Stop Me Now", "Rock & Roll All Night", "Café Au Lait", "Ça Plane Pour Moi",
    "Señorita", "Niño Querido", "Über Alles", "Lost In The City", "Hold On", "It's Alright",
    "Y Tú Qué Has Hecho?", "L'Été Indien", "Smörgåsbord", "Naïve Melody", "Crème Brûlée",
    "Mañana", "Midnight Train", "Sweet Home", "Blue Monday", "Heartbreaker", "Let's Dance",
    "We'll Meet Again", "Ain't No Sunshine", "Rain; Fall Down", "Ghosts & Gold", "Fire & Ice",
    "Broken Wings", "Summer Nights", "City Lights", "Old Friends", "Run Run Run",
    "Goodbye Yellow Road", "Learn To Fly", "Happy Birthday", "Dancing Queen", "Jeux Interdits",
    "Déjà Vu", "Piñata", "Sehr Kosmisch", "Fußball", "Frühling", "Chérie", "Señor Blues",
    "O Sole Mio", "Tout Va Bien", "Mr. Jones", "Mrs. Robinson", "Sunday Morning", "Take Five",
    "Into The Mystic", "Clair De Lune", "Back In Black", "Tonight; Tonight", "Rhythm & Blues",
    "Don't Wanna Know", "Hey Joe", "Cat's In The Cradle", "Jalapeño", "Müde", "Åh Åh",
)  # fmt: skip
_SUFFIXES = (
    " (Live)", " (Album Version)", " (Remix)", " (Radio Edit)", " [Demo]", " (Acoustic)",
    " (Explicit)", " (LP Version)", " - Live at Montréal", " (Instrumental)", " (Reprise)",
)  # fmt: skip
_PLACES = ("Montréal", "the Olympia", "Wembley", "Zürich", "the Fillmore", "Reykjavík")
_SONG_LOCATIONS = (
    "Los Angeles, CA", "New York, NY", "London, England", "Hamburg, Germany", "Montréal, Québec",
    "São Paulo, Brazil", "Reykjavík, Iceland", "Bogotá, Colombia", "Zürich, Switzerland",
    "Kraków, Poland", "Chicago, IL", "Nashville, TN", "Detroit, MI", "Kingston, Jamaica",
    "Paris, France", "Tokyo, Japan", "Memphis, TN", "Austin, TX", "Seattle, WA", "Dublin, Ireland",
    "Bronx, NY", "Houston, TX", "Atlanta, GA", "Oakland, CA", "Lagos, Nigeria", "Malmö, Sweden",
    "Düsseldorf, Germany", "Hollywood, CA", "Fort Worth, TX", "Morris Plains, NJ",
    "Panama City, Panamá", "California - LA", "Brooklyn", "UK - England - London",
)  # fmt: skip
_USER_FIRST = (
    ("Ryan", "M"), ("Kaylee", "F"), ("Jacob", "M"), ("Lily", "F"), ("Chloe", "F"),
    ("Tegan", "F"), ("Jayden", "M"), ("Aleena", "F"), ("Ava", "F"), ("Mohammad", "M"),
    ("Matthew", "M"), ("Kate", "F"), ("Isaac", "M"), ("Layla", "F"), ("Wyatt", "M"),
    ("Sara", "F"), ("Cienna", "F"), ("Tucker", "M"), ("Brayden", "M"), ("Jordyn", "F"),
    ("Rylan", "M"), ("Morris", "M"), ("Harper", "F"), ("Stefany", "F"), ("Connar", "M"),
)  # fmt: skip
_USER_LAST = (
    "Smith", "Summers", "Rodriguez", "Koch", "Cuevas", "Levine", "Graves", "Kirby", "Robinson",
    "Jones", "Harrell", "Jordan", "Valdez", "George", "Gilbert", "Freeman", "Barrera", "Moore",
    "Griffin", "Ellis", "Ortiz", "Powell", "Hicks", "White", "Carlson",
)  # fmt: skip
_USER_LOCATIONS = (
    "San Jose-Sunnyvale-Santa Clara, CA", "Phoenix-Mesa-Scottsdale, AZ",
    "Lansing-East Lansing, MI", "Portland-South Portland, ME", "Waterloo-Cedar Falls, IA",
    "Chicago-Naperville-Elgin, IL-IN-WI", "San Francisco-Oakland-Hayward, CA",
    "Atlanta-Sandy Springs-Roswell, GA", "New York-Newark-Jersey City, NY-NJ-PA",
    "Los Angeles-Long Beach-Anaheim, CA", "Tampa-St. Petersburg-Clearwater, FL",
    "Houston-The Woodlands-Sugar Land, TX", "Seattle-Tacoma-Bellevue, WA",
    "Janesville-Beloit, WI", "Red Bluff, CA", "Birmingham-Hoover, AL", "Winston-Salem, NC",
    "Marinette, WI-MI", "Detroit-Warren-Dearborn, MI", "Santa Maria-Santa Barbara, CA",
)  # fmt: skip
_USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Ubuntu Chromium/36.0.1985.125 Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.77.4 (KHTML, like Gecko) "
    "Version/7.0.5 Safari/537.77.4",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; WOW64; Trident/6.0)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 "
    "(KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53",
    "Mozilla/5.0 (Windows NT 6.3; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:31.0) Gecko/20100101 Firefox/31.0",
)

# (method, status) per page; every page of the note is here.
_PAGE_HTTP: dict[str, tuple[str, int]] = {
    "NextSong": ("PUT", 200),
    "Home": ("GET", 200),
    "Login": ("PUT", 307),
    "Logout": ("PUT", 307),
    "Downgrade": ("GET", 200),
    "Settings": ("GET", 200),
    "Help": ("GET", 200),
    "About": ("GET", 200),
    "Upgrade": ("GET", 200),
    "Save Settings": ("PUT", 307),
    "Error": ("GET", 404),
    "Submit Upgrade": ("PUT", 307),
    "Submit Downgrade": ("PUT", 307),
}
# Pages a logged-in user visits between songs (Upgrade/Downgrade are fixed up per level).
_BROWSE_PAGES = ("Home",) * 8 + (
    "Settings", "Settings", "Help", "Help", "About", "Upgrade", "Downgrade", "Save Settings",
    "Error",
)  # fmt: skip
_LOGGED_OUT_PAGES = ("Home", "Home", "Home", "About", "Help", "Error")

_ID_HEAD = string.ascii_uppercase
_ID_TAIL = string.ascii_uppercase + string.digits

# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------


def _person(rng: random.Random) -> str:
    """A performer's name such as ``Lil' Bran`` or ``Björn O'Brien``."""
    roll = rng.random()
    if roll < 0.15:
        return rng.choice(_PREFIX) + rng.choice(_FIRST + _LAST)
    if roll < 0.2:
        return f'{rng.choice(_FIRST)} "{rng.choice(_NICK)}" {rng.choice(_LAST)}'
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _artist_name(rng: random.Random) -> str:
    """A short artist or band name."""
    roll = rng.random()
    if roll < 0.35:
        return _person(rng)
    if roll < 0.5:
        return f"The {rng.choice(_ADJ)} {rng.choice(_NOUN)}"
    if roll < 0.62:
        return f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}"
    if roll < 0.7:
        return f"{_person(rng)} & The {rng.choice(_NOUN)}"
    if roll < 0.78:
        return f"{_person(rng)} (Featuring {_person(rng)} & {_person(rng)})"
    if roll < 0.84:
        return f"{_person(rng)}; {_person(rng)}"
    if roll < 0.9:
        return f"{rng.choice(_FIRST)} & {rng.choice(_FIRST)}"
    return rng.choice(_BANDS)


def _title(rng: random.Random) -> str:
    """A short song title."""
    base = rng.choice(_PHRASES)
    roll = rng.random()
    if roll < 0.4:
        return base
    if roll < 0.7:
        return base + rng.choice(_SUFFIXES)
    if roll < 0.78:
        return f'"{base}"'
    if roll < 0.86:
        return f"{base} (feat. {_person(rng)})"
    if roll < 0.93:
        return f"{base}; {rng.choice(_PHRASES)}"
    return f"{base} & {rng.choice(_PHRASES)}"


def _grow(rng: random.Random, text: str, pieces: Callable[[], str], limit: int) -> str:
    """Append random pieces to ``text`` while it stays within ``limit`` characters."""
    for _ in range(40):
        piece = pieces()
        if len(text) + len(piece) <= limit:
            text += piece
        if len(text) >= limit - 6:
            break
    return text


def _long_artist_name(rng: random.Random) -> str:
    """An artist credit of up to 95 characters, like the longest real ones."""
    return _grow(rng, _person(rng), lambda: rng.choice((", ", " & ", " / ")) + _person(rng), 95)


def _long_title(rng: random.Random) -> str:
    """A title of up to 150 characters, like the longest real ones."""

    def piece() -> str:
        roll = rng.random()
        if roll < 0.3:
            return f" ({rng.choice(_PHRASES)} Remix)"
        if roll < 0.55:
            return f" [feat. {_person(rng)} & {_person(rng)}]"
        if roll < 0.75:
            return f" - Live at {rng.choice(_PLACES)}"
        return "; " + rng.choice(_PHRASES)

    return _grow(rng, rng.choice(_PHRASES), piece, 150)


def _new_id(rng: random.Random, prefix: str, taken: set[str]) -> str:
    """``prefix`` + 16 upper-case letters/digits (5 letters first), unique within ``taken``."""
    while True:
        head = "".join(rng.choices(_ID_HEAD, k=5))
        value = prefix + head + "".join(rng.choices(_ID_TAIL, k=11))
        if value not in taken:
            taken.add(value)
            return value


def _new_track_id(rng: random.Random, taken: set[str]) -> str:
    """``TR`` + 16 chars; the first three letters (folders) are [AB][A-Z][A-Z] as in the MSD."""
    while True:
        head = rng.choice("AB") + "".join(rng.choices(_ID_HEAD, k=4))
        value = "TR" + head + "".join(rng.choices(_ID_TAIL, k=11))
        if value not in taken:
            taken.add(value)
            return value


# --------------------------------------------------------------------------------------
# Songs
# --------------------------------------------------------------------------------------


@dataclass
class _Artist:
    artist_id: str
    name: str
    location: str
    latitude: float | None
    longitude: float | None
    songs: int = 0


@dataclass(frozen=True)
class _Song:
    track_id: str
    play: tuple[str, str, float]  # (artist name, title, duration) as a matching play has them
    record: dict[str, object]  # the JSON object, keys in the real order


def _build_artists(rng: random.Random, count: int) -> list[_Artist]:
    """Artists with ids, names (every 97th one long) and locations, coordinates unset."""
    taken: set[str] = set()
    artists = []
    for index in range(count):
        name = _long_artist_name(rng) if index % 97 == 1 % count else _artist_name(rng)
        location = rng.choice(_SONG_LOCATIONS) if rng.random() < 0.55 else ""
        artists.append(_Artist(_new_id(rng, "AR", taken), name, location, None, None))
    return artists


def _assign_artists(rng: random.Random, songs: int, artists: list[_Artist]) -> list[_Artist]:
    """One artist per song: each artist gets one song, the rest go to random artists."""
    owners = list(artists[:songs])
    by_fame = rng.sample(artists, len(artists))
    weights = [1.0 / (rank + 1) ** 0.5 for rank in range(len(by_fame))]
    owners += rng.choices(by_fame, weights=weights, k=songs - len(owners))
    rng.shuffle(owners)
    for artist in owners:
        artist.songs += 1
    return owners


def _place_artists(rng: random.Random, artists: list[_Artist], songs: int) -> None:
    """Give coordinates to artists covering at most ~42% of the songs (so > half are null)."""
    budget = int(songs * 0.42)
    order = list(range(len(artists)))
    rng.shuffle(order)
    for index in order:
        artist = artists[index]
        if artist.songs <= budget:
            budget -= artist.songs
            artist.latitude = round(rng.uniform(-40.0, 62.0), 5)
            artist.longitude = round(rng.uniform(-124.0, 150.0), 5)
            if not artist.location:
                artist.location = rng.choice(_SONG_LOCATIONS)


def _artist_fields(
    rng: random.Random, artist: _Artist, vary: bool
) -> tuple[str, str, float | None, float | None]:
    """(name, location, latitude, longitude) of one song, slightly varied when ``vary``."""
    name, location = artist.name, artist.location
    lat, lon = artist.latitude, artist.longitude
    if not vary:
        return name, location, lat, lon
    roll = rng.random()
    if roll < 0.4 or (roll < 0.7 and lat is None):
        location = "" if location else rng.choice(_SONG_LOCATIONS)
    elif roll < 0.7 and lat is not None and lon is not None:
        lat = round(lat + rng.uniform(-0.05, 0.05), 5)
        lon = round(lon + rng.uniform(-0.05, 0.05), 5)
    elif name.startswith("The "):
        name = name[4:]
    elif len(name) < 60:
        name = f"{name} featuring {_person(rng)}"
    else:
        name = name.upper()
    return name, location, lat, lon


def _duration(rng: random.Random) -> float:
    """A song length in seconds with (at most) 5 decimals."""
    return round(min(max(rng.lognormvariate(5.4, 0.4), 20.0), 1800.0), 5)


def _build_songs(rng: random.Random, count: int) -> list[_Song]:
    """The song catalogue, sorted by track id."""
    artists = _build_artists(rng, max(1, min(count - 1, round(count * 0.68))))
    owners = _assign_artists(rng, count, artists)
    _place_artists(rng, artists, count)
    unknown_year = set(rng.sample(range(count), count // 2 + 1 + count // 12))
    seen: dict[str, int] = {}
    forced = False
    track_ids: set[str] = set()
    song_ids: set[str] = set()
    songs = []
    for index, artist in enumerate(owners):
        seen[artist.artist_id] = seen.get(artist.artist_id, 0) + 1
        repeat = seen[artist.artist_id] > 1
        vary = repeat and (not forced or rng.random() < 0.2)
        forced = forced or vary
        name, location, lat, lon = _artist_fields(rng, artist, vary)
        title = _long_title(rng) if index % 150 == 2 % count else _title(rng)
        year = 0 if index in unknown_year else int(rng.triangular(1955, 2010, 2004))
        duration = _duration(rng)
        record: dict[str, object] = {
            "num_songs": 1,
            "artist_id": artist.artist_id,
            "artist_latitude": lat,
            "artist_longitude": lon,
            "artist_location": location,
            "artist_name": name,
            "song_id": _new_id(rng, "SO", song_ids),
            "title": title,
            "duration": duration,
            "year": year,
        }
        songs.append(_Song(_new_track_id(rng, track_ids), (name, title, duration), record))
    songs.sort(key=lambda song: song.track_id)
    return songs


def _write_songs(root: pathlib.Path, songs: Sequence[_Song]) -> int:
    """Write one single-line JSON file per song under ``root/A/B/C/``."""
    made: set[pathlib.Path] = set()
    for song in songs:
        tid = song.track_id
        folder = root / tid[2] / tid[3] / tid[4]
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        line = json.dumps(song.record, ensure_ascii=False, separators=(", ", ": "))
        (folder / f"{tid}.json").write_text(line, encoding="utf-8")
    return len(songs)


# --------------------------------------------------------------------------------------
# Plays
# --------------------------------------------------------------------------------------


class _PlayPicker:
    """Chooses (artist, song, length) for plays: ``match_ratio`` from the catalogue."""

    def __init__(self, rng: random.Random, songs: Sequence[_Song], match_ratio: float) -> None:
        """Build popularity-weighted pools of catalogue songs and of songs not in it."""
        self._rng = rng
        self._ratio = match_ratio
        matched = [song.play for song in songs]
        rng.shuffle(matched)
        self._matched, self._matched_cw = matched, _zipf_cum_weights(len(matched))
        other = self._unmatched_pool(rng, {song.play[0] for song in songs}, len(songs))
        self._other, self._other_cw = other, _zipf_cum_weights(len(other))

    @staticmethod
    def _unmatched_pool(
        rng: random.Random, catalogue_artists: set[str], songs: int
    ) -> list[tuple[str, str, float]]:
        """Plays whose artist name appears nowhere in song_data."""
        size = min(max(400, 3 * songs), 30_000)
        pool: list[tuple[str, str, float]] = []
        while len(pool) < size:
            artist = _long_artist_name(rng) if len(pool) % 211 == 7 else _artist_name(rng)
            if artist in catalogue_artists:
                continue
            title = _long_title(rng) if len(pool) % 223 == 11 else _title(rng)
            pool.append((artist, title, _duration(rng)))
        rng.shuffle(pool)
        return pool

    def pick(self) -> tuple[str, str, float]:
        """The next play's (artist, song, length)."""
        rng = self._rng
        if rng.random() < self._ratio:
            pool, cum = self._matched, self._matched_cw
        else:
            pool, cum = self._other, self._other_cw
        return pool[bisect.bisect_right(cum, rng.random() * cum[-1], hi=len(cum) - 1)]


def _zipf_cum_weights(count: int) -> list[float]:
    """Cumulative popularity weights ~ 1/rank^0.8 for ``count`` items."""
    total, cum = 0.0, []
    for rank in range(count):
        total += 1.0 / (rank + 1) ** 0.8
        cum.append(total)
    return cum


# --------------------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------------------


@dataclass
class _User:
    user_id: str
    first_name: str
    last_name: str
    gender: str
    location: str
    registration: float
    user_agent: str  # already wrapped in literal double quotes
    level: str  # current level; mutated while generating
    changes: list[int]  # day indices on/after which the level flips, ascending


def _build_users(rng: random.Random, spec: SampleSpec) -> list[_User]:
    """Users with ids like the real ones (digits, a few gaps); the busiest change level."""
    ids = sorted(rng.sample(range(2, 2 + spec.users + spec.users // 10 + 5), spec.users))
    start_ms = calendar.timegm(spec.start.timetuple()) * 1000
    users = []
    for user_id in ids:
        first, gender = rng.choice(_USER_FIRST)
        users.append(
            _User(
                user_id=str(user_id),
                first_name=first,
                last_name=rng.choice(_USER_LAST),
                gender=gender,
                location=rng.choice(_USER_LOCATIONS),
                registration=float(start_ms - rng.randint(DAY_MS, 200 * DAY_MS)),
                user_agent='"' + rng.choice(_USER_AGENTS) + '"',
                level="paid" if rng.random() < 0.25 else "free",
                changes=[],
            )
        )
    rng.shuffle(users)  # activity rank: the first users are the busiest
    _plan_level_changes(rng, users, spec.days)
    return users


def _plan_level_changes(rng: random.Random, users: list[_User], days: int) -> None:
    """About a quarter of the users change level; the two busiest always do, once."""
    for rank, user in enumerate(users):
        if rank < 2:
            user.changes = [days // (4 - rank)]
        elif rng.random() < 0.25:
            first = rng.randrange(days)
            user.changes = [first]
            if rng.random() < 0.25:
                user.changes.append(rng.randint(first, days - 1))


def _user_cum_weights(count: int) -> list[float]:
    """Cumulative activity weights: a few heavy listeners, a long tail."""
    total, cum = 0.0, []
    for rank in range(count):
        total += 1.0 / (rank + 1) ** 0.9
        cum.append(total)
    return cum


# --------------------------------------------------------------------------------------
# Sessions and events
# --------------------------------------------------------------------------------------

# One row of a session before timing: [offset ms, page, logged in?, play or None].
_Row = list
_GUEST_SHARE = 0.02
_SLOT = "<slot>"  # placeholder page: becomes Upgrade/Submit Upgrade (etc.) or a browse page


class _Session:
    """The rows of one session; ``start`` and ``session_id`` are set once laid out."""

    __slots__ = ("first_play", "play_offsets", "rows", "session_id", "span", "start", "user")

    def __init__(self, user: _User | None, rows: list[_Row]) -> None:
        """Wrap ``rows`` (offsets already filled in) of ``user`` (None: guest session)."""
        self.user = user
        self.rows = rows
        self.span: int = rows[-1][0]
        self.play_offsets = [row[0] for row in rows if row[3] is not None]
        self.first_play = self.play_offsets[0] if self.play_offsets else None
        self.start = 0
        self.session_id = 0


def _session_pages(rng: random.Random, length: int, slot: bool) -> list[tuple[str, bool]]:
    """(page, logged in?) of a user session: optional login prelude and logout ending."""
    prelude = length >= 4 and rng.random() < 0.15
    ending = length - 2 * prelude >= 4 and rng.random() < 0.12
    core = length - 2 * prelude - 2 * ending
    pages = ["NextSong" if rng.random() < 0.93 else rng.choice(_BROWSE_PAGES) for _ in range(core)]
    if core >= 2 and rng.random() < 0.35:
        pages[0] = "Home"
    if core >= 2 and "NextSong" not in pages:
        pages[-1] = "NextSong"
    if slot and core >= 4:
        mid = core // 2 - 1
        pages[mid - 1 : mid + 3] = ["NextSong", _SLOT, _SLOT, "NextSong"]
    rows = [(page, True) for page in pages]
    if prelude:
        rows = [("Home", False), ("Login", False), *rows]
    if ending:
        rows += [("Logout", True), ("Home", False)]
    return rows


def _timed_rows(
    rng: random.Random, pages: list[tuple[str, bool]], picker: _PlayPicker
) -> list[_Row]:
    """Rows with offsets: after a song the next event comes about its length later."""
    rows: list[_Row] = []
    offset = 0
    for page, logged_in in pages:
        if page == "NextSong":
            play = picker.pick()
            rows.append([offset, page, logged_in, play])
            offset += int(play[2] * 1000) + int(rng.random() * 400) + 1
        else:
            rows.append([offset, page, logged_in, None])
            offset += 1000 + int(rng.random() * 90_000)
    return rows


def _pending_change(user: _User, day: int) -> bool:
    """Whether ``user`` has a level change due on or before ``day``."""
    return bool(user.changes) and user.changes[0] <= day


def _build_sessions(
    rng: random.Random,
    count: int,
    day: int,
    users: list[_User],
    user_cw: list[float],
    picker: _PlayPicker,
) -> list[_Session]:
    """Sessions of one day holding exactly ``count`` events."""
    sessions = []
    remaining = count
    while remaining > 0:
        length = min(remaining, 1 + int(rng.expovariate(1 / 9)), 200)
        guest = rng.random() < _GUEST_SHARE
        if guest:  # visitors who never log in look at a page or four
            length = min(length, 1 + int(rng.random() * 4))
        remaining -= length
        if guest:
            pages = [(rng.choice(_LOGGED_OUT_PAGES), False) for _ in range(length)]
            sessions.append(_Session(None, _timed_rows(rng, pages, picker)))
            continue
        pick = rng.random() * user_cw[-1]
        user = users[bisect.bisect_right(user_cw, pick, hi=len(user_cw) - 1)]
        pages = _session_pages(rng, length, _pending_change(user, day))
        sessions.append(_Session(user, _timed_rows(rng, pages, picker)))
    return sessions


def _lay_out(rng: random.Random, sessions: list[_Session], day_start: int) -> None:
    """Place every session inside the day (squeezing the rare one longer than a day)."""
    for session in sessions:
        room = DAY_MS - 1 - session.span
        if room < 0:
            scale = (DAY_MS - 1) / session.span
            for row in session.rows:
                row[0] = int(row[0] * scale)
            session.span = session.rows[-1][0]
            session.play_offsets = [row[0] for row in session.rows if row[3] is not None]
            session.first_play = session.play_offsets[0] if session.play_offsets else None
            room = 0
        session.start = day_start + int(rng.random() * (room + 1))


def _make_twins(rng: random.Random, sessions: list[_Session], day_start: int, pairs: int) -> int:
    """Shift sessions so that ``pairs`` plays share a ``ts`` with a play of another user."""
    candidates = [s for s in sessions if s.user is not None and s.first_play is not None]
    used: set[int] = set()
    made = 0
    for moved in candidates:
        if made >= pairs:
            break
        if id(moved) in used:
            continue
        for anchor in candidates:
            if id(anchor) in used or anchor.user is moved.user or anchor is moved:
                continue
            start = anchor.start + rng.choice(anchor.play_offsets) - (moved.first_play or 0)
            if day_start <= start and start + moved.span < day_start + DAY_MS:
                moved.start = start
                used.update((id(moved), id(anchor)))
                made += 1
                break
    return made


def _fill_slot(rng: random.Random, session: _Session, user: _User, day: int) -> None:
    """Turn the two slot rows into an upgrade/downgrade (if still due) or plain browsing."""
    slot = [row for row in session.rows if row[1] == _SLOT]
    if not slot:
        return
    if _pending_change(user, day):
        upgrade = user.level == "free"
        slot[0][1] = "Upgrade" if upgrade else "Downgrade"
        slot[1][1] = "Submit Upgrade" if upgrade else "Submit Downgrade"
        user.changes.pop(0)
    else:
        slot[0][1] = rng.choice(_BROWSE_PAGES)
        slot[1][1] = rng.choice(_BROWSE_PAGES)


def _session_lines(session: _Session, enc: json.JSONEncoder) -> list[tuple[int, int, int, str]]:
    """Encode a session's rows as (ts, sessionId, itemInSession, json line)."""
    user = session.user
    level = user.level if user is not None else "free"
    out = []
    for item, (offset, page, logged_in, play) in enumerate(session.rows):
        if page in ("Upgrade", "Downgrade"):
            page = "Upgrade" if level == "free" else "Downgrade"
        method, status = _PAGE_HTTP[page]
        ts = session.start + offset
        artist, song, length = play if play is not None else (None, None, None)
        if logged_in and user is not None:
            record = {
                "artist": artist, "auth": "Logged In", "firstName": user.first_name,
                "gender": user.gender, "itemInSession": item, "lastName": user.last_name,
                "length": length, "level": level, "location": user.location,
                "method": method, "page": page, "registration": user.registration,
                "sessionId": session.session_id, "song": song, "status": status, "ts": ts,
                "userAgent": user.user_agent, "userId": user.user_id,
            }  # fmt: skip
        else:
            record = {
                "artist": None, "auth": "Logged Out", "firstName": None, "gender": None,
                "itemInSession": item, "lastName": None, "length": None, "level": level,
                "location": None, "method": method, "page": page, "registration": None,
                "sessionId": session.session_id, "song": None, "status": status, "ts": ts,
                "userAgent": None, "userId": "",
            }  # fmt: skip
        out.append((ts, session.session_id, item, enc.encode(record)))
        if user is not None and page in ("Submit Upgrade", "Submit Downgrade"):
            level = user.level = "paid" if page == "Submit Upgrade" else "free"
    return out


def _day_count(rng: random.Random, low: int, high: int, day: date) -> int:
    """Events of one day within [low, high]; weekends tend to be quieter."""
    shape = 1.6 if day.weekday() >= 5 else 1.0
    return low + int((high - low + 1) * rng.random() ** shape)


def _write_logs(
    root: pathlib.Path,
    rng: random.Random,
    spec: SampleSpec,
    users: list[_User],
    picker: _PlayPicker,
) -> tuple[int, int]:
    """Generate and write one NDJSON file per day; return (events, plays)."""
    enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    user_cw = _user_cum_weights(len(users))
    next_session_id = 1
    events = plays = 0
    for index in range(spec.days):
        day = spec.start + timedelta(days=index)
        day_start = calendar.timegm(day.timetuple()) * 1000
        count = _day_count(rng, *spec.events_per_day, day)
        sessions = _build_sessions(rng, count, index, users, user_cw, picker)
        _lay_out(rng, sessions, day_start)
        _make_twins(rng, sessions, day_start, 1 + count // 400)
        sessions.sort(key=lambda s: s.start)  # stable: ties keep creation order
        lines = []
        for session in sessions:
            session.session_id = next_session_id
            next_session_id += 1
            if session.user is not None:
                _fill_slot(rng, session, session.user, index)
            lines.extend(_session_lines(session, enc))
            plays += len(session.play_offsets)
        lines.sort()
        events += len(lines)
        _write_day(root, day, lines)
    return events, plays


def _write_day(root: pathlib.Path, day: date, lines: list[tuple[int, int, int, str]]) -> None:
    """Write ``log_data/YYYY/MM/YYYY-MM-DD-events.json``."""
    folder = root / f"{day.year:04d}" / f"{day.month:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{day.isoformat()}-events.json", "w", encoding="utf-8", newline="\n") as f:
        f.writelines(line + "\n" for _, _, _, line in lines)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line (defaults are those of :class:`SampleSpec`)."""
    parser = argparse.ArgumentParser(
        prog="python -m dev.sample_data",
        description="Write deterministic Sparkify sample data (song_data/ and log_data/).",
    )
    d = DEFAULT_SPEC
    parser.add_argument("--out", type=pathlib.Path, required=True, help="output directory")
    parser.add_argument("--start", type=date.fromisoformat, default=d.start, help="YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=d.days)
    parser.add_argument("--songs", type=int, default=d.songs)
    parser.add_argument(
        "--events-per-day", type=int, nargs=2, metavar=("MIN", "MAX"), default=d.events_per_day
    )
    parser.add_argument("--users", type=int, default=d.users)
    parser.add_argument("--match-ratio", type=float, default=d.match_ratio)
    parser.add_argument("--seed", type=int, default=d.seed)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; print a one-line summary."""
    args = _parse_args(argv)
    try:
        spec = SampleSpec(
            start=args.start,
            days=args.days,
            songs=args.songs,
            events_per_day=(args.events_per_day[0], args.events_per_day[1]),
            users=args.users,
            match_ratio=args.match_ratio,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s = generate(args.out, spec)
    print(
        f"wrote {s.song_files} song files and {s.log_files} log files "
        f"({s.events} events, {s.plays} plays, {s.first_day}..{s.last_day}) to {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

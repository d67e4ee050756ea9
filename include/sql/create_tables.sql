-- Every table of the warehouse. Idempotent (IF NOT EXISTS), and valid on PostgreSQL and
-- Amazon Redshift alike: types both know, no SERIAL, no PostgreSQL-only syntax.
-- VARCHAR lengths are in bytes on Redshift: titles run to ~150 non-ASCII characters.

-- Staging: column names are the JSON keys in lower case, so Redshift's
-- COPY ... FORMAT AS JSON 'auto ignorecase' and the PostgreSQL loader map them the same way.
CREATE TABLE IF NOT EXISTS staging_events (
    artist          VARCHAR(1024),
    auth            VARCHAR(32),
    firstname       VARCHAR(256),
    gender          VARCHAR(8),
    iteminsession   INTEGER,
    lastname        VARCHAR(256),
    length          DOUBLE PRECISION,
    level           VARCHAR(16),
    location        VARCHAR(1024),
    method          VARCHAR(16),
    page            VARCHAR(64),
    registration    DOUBLE PRECISION,   -- epoch milliseconds
    sessionid       INTEGER,
    song            VARCHAR(1024),
    status          INTEGER,
    ts              BIGINT NOT NULL,    -- epoch milliseconds, UTC
    useragent       VARCHAR(1024),
    userid          VARCHAR(32),        -- digits, or '' when logged out
    source_key      VARCHAR(1024),      -- the S3 object the row came from
    -- Each run's rows are kept apart, so runs of different intervals (or 24 hourly runs
    -- of one day file) stage at once: a run replaces its own rows, its loads read them.
    run_id          VARCHAR(256),
    staged_at       TIMESTAMP           -- UTC; other runs' rows a day old are dropped
);

CREATE TABLE IF NOT EXISTS staging_songs (
    num_songs           INTEGER,
    artist_id           VARCHAR(32),
    artist_latitude     DOUBLE PRECISION,
    artist_longitude    DOUBLE PRECISION,
    artist_location     VARCHAR(1024),
    artist_name         VARCHAR(1024),
    song_id             VARCHAR(32),
    title               VARCHAR(1024),
    duration            DOUBLE PRECISION,
    year                INTEGER,
    source_key          VARCHAR(1024)       -- the S3 object the row came from (NULL when
                                            -- Redshift copied the whole prefix at once)
);

-- Which objects a staging table holds, by key and ETag: an incremental load reads only
-- the objects that are new or changed since the last successful load.
CREATE TABLE IF NOT EXISTS staging_manifest (
    table_name      VARCHAR(256) NOT NULL,
    source_key      VARCHAR(1024) NOT NULL,
    etag            VARCHAR(256) NOT NULL,
    loaded_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (table_name, source_key)
);

-- The plays each staged log object holds per UTC hour, written by the events staging in
-- its load's transaction (the rows of the objects it loads are replaced): the quality
-- checks compare an interval's plays in songplays with these.
CREATE TABLE IF NOT EXISTS staging_counts (
    table_name      VARCHAR(256) NOT NULL,
    source_key      VARCHAR(1024) NOT NULL,
    hour_start      TIMESTAMP NOT NULL,     -- UTC hour of the plays' ts
    plays           INTEGER NOT NULL,       -- distinct NextSong (userId, sessionId,
                                            -- itemInSession) staged from the object in it
    run_id          VARCHAR(256) NOT NULL,
    counted_at      TIMESTAMP NOT NULL
);

-- Fact: one row per play. songplay_id is derived from the event's identity
-- (userId, sessionId, itemInSession), so re-runs and any load order give the same ids.
CREATE TABLE IF NOT EXISTS songplays (
    songplay_id     VARCHAR(32) NOT NULL PRIMARY KEY,
    start_time      TIMESTAMP NOT NULL,
    user_id         INTEGER,
    level           VARCHAR(16),
    song_id         VARCHAR(32),
    artist_id       VARCHAR(32),
    session_id      INTEGER,
    location        VARCHAR(1024),
    user_agent      VARCHAR(1024)
);

CREATE TABLE IF NOT EXISTS users (
    user_id         INTEGER NOT NULL PRIMARY KEY,
    first_name      VARCHAR(256),
    last_name       VARCHAR(256),
    gender          VARCHAR(8),
    level           VARCHAR(16),
    last_play_at    TIMESTAMP NOT NULL  -- the play whose level this row keeps
);

CREATE TABLE IF NOT EXISTS songs (
    song_id         VARCHAR(32) NOT NULL PRIMARY KEY,
    title           VARCHAR(1024),
    artist_id       VARCHAR(32),
    year            INTEGER,            -- NULL when unknown (0 in the source)
    duration        DOUBLE PRECISION
);

CREATE TABLE IF NOT EXISTS artists (
    artist_id       VARCHAR(32) NOT NULL PRIMARY KEY,
    name            VARCHAR(1024),
    location        VARCHAR(1024),
    latitude        DOUBLE PRECISION,
    longitude       DOUBLE PRECISION
);

CREATE TABLE IF NOT EXISTS "time" (          -- quoted: TIME is reserved on Redshift
    start_time      TIMESTAMP NOT NULL PRIMARY KEY,
    hour            SMALLINT,
    day             SMALLINT,
    week            SMALLINT,
    month           SMALLINT,
    year            SMALLINT,
    weekday         SMALLINT            -- 0 = Sunday
);

-- Records the staging step set aside (malformed JSON, wrong types, missing fields, values
-- too long, NUL characters, broken staging rules), with where they came from; a re-run of
-- a run replaces its own rows.
CREATE TABLE IF NOT EXISTS staging_rejects (
    run_id          VARCHAR(256) NOT NULL,
    table_name      VARCHAR(256) NOT NULL,
    source_key      VARCHAR(1024) NOT NULL,
    line_number     INTEGER,            -- NULL: a row Redshift copied, then a rule refused
    reason          VARCHAR(1024) NOT NULL,
    raw_line        VARCHAR(65535),     -- the line as read, cut at 65,535 characters
                                        -- (a rule-refused Redshift row: its values as JSON)
    rejected_at     TIMESTAMP NOT NULL
);

-- One row per quality check per attempt of a run: what was observed against what was
-- expected. A re-run of the same attempt replaces its rows.
CREATE TABLE IF NOT EXISTS data_quality_results (
    run_id          VARCHAR(256) NOT NULL,
    check_name      VARCHAR(256) NOT NULL,
    table_name      VARCHAR(256) NOT NULL,
    passed          BOOLEAN NOT NULL,
    observed        VARCHAR(1024),
    expected        VARCHAR(1024),
    checked_at      TIMESTAMP NOT NULL,
    try_number      INTEGER             -- the task's attempt; last, as ALTER TABLE adds it
);

-- Each user's latest play per loaded interval (the interval is the one last_play_at lies
-- in): the users load replaces the interval's rows, like the fact load, then rebuilds
-- users from the latest row per user, so users follow corrected data as songplays do.
CREATE TABLE IF NOT EXISTS users_history (
    user_id         INTEGER NOT NULL,
    first_name      VARCHAR(256),
    last_name       VARCHAR(256),
    gender          VARCHAR(8),
    level           VARCHAR(16),
    last_play_at    TIMESTAMP NOT NULL, -- the user's latest play in its interval
    PRIMARY KEY (user_id, last_play_at)
);

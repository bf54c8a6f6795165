-- Runway's dataset store on PostgreSQL, schema version 1: the same facts
-- as the embedded store (store/sqlite.rs), one column per fact, checked by
-- the database. Names and keys compare byte by byte (COLLATE "C"), as in
-- SQLite, so listings page in the same order on both backends.

-- (dataset, key) -> value, and who wrote it.
CREATE TABLE records (
    dataset   text COLLATE "C" NOT NULL,
    key       text COLLATE "C" NOT NULL,
    value     bytea  NOT NULL,
    runway    text   NOT NULL,
    agent     text   NOT NULL,
    plugin    bytea  NOT NULL CHECK (length(plugin) = 32),
    attempt   bigint NOT NULL CHECK (attempt >= 0),
    token     bigint NOT NULL CHECK (token >= 0),
    audit_seq bigint NOT NULL CHECK (audit_seq >= 0),
    PRIMARY KEY (dataset, key)
);

-- Each dataset's fence: the highest exclusive token that committed to it.
CREATE TABLE fences (
    dataset text COLLATE "C" PRIMARY KEY,
    token   bigint NOT NULL CHECK (token >= 0)
);

-- The one fencing-token sequence: unique and growing across restarts and
-- hosts (nextval is never rolled back, never handed out twice).
CREATE SEQUENCE fencing_tokens AS bigint START 1;

-- One row per run commit, keyed by the audit seq of its COMMITTING record.
CREATE TABLE commits (
    committing_seq bigint PRIMARY KEY CHECK (committing_seq >= 0),
    runway         text   NOT NULL,
    attempt        bigint NOT NULL CHECK (attempt >= 0),
    output         bytea  NOT NULL CHECK (length(output) = 32)
);

-- What each commit landed on each dataset.
CREATE TABLE commit_datasets (
    committing_seq bigint NOT NULL REFERENCES commits (committing_seq),
    dataset        text COLLATE "C" NOT NULL,
    token          bigint NOT NULL CHECK (token >= 0),
    writes         bigint NOT NULL CHECK (writes >= 0),
    deletes        bigint NOT NULL CHECK (deletes >= 0),
    PRIMARY KEY (committing_seq, dataset)
);

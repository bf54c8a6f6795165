-- Schema version 2: many hosts on one database (DESIGN.md, "Beyond one
-- machine"). One leads at a time under a term; every host is listed with
-- its last heartbeat; the controller's records go into one shared history
-- every host can fold; commits are keyed by the shard (audit origin) of
-- their COMMITTING record, since each host numbers its own records.

-- The one leader: its term (growing, never reused), its origin, and when
-- its lease lapses (the database's clock decides, never a host's).
CREATE TABLE leadership (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    term       bigint      NOT NULL CHECK (term > 0),
    origin     text        NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Every host that joined, by the origin of its audit shard.
CREATE TABLE hosts (
    origin    text        PRIMARY KEY,
    pid       bigint      NOT NULL,
    joined_at timestamptz NOT NULL,
    beat_at   timestamptz NOT NULL,
    in_flight bigint      NOT NULL DEFAULT 0 CHECK (in_flight >= 0),
    -- Where its API listens, once it does (a leader).
    api       text
);

-- The controller's records, in the order the database took them: each is
-- a record of the shard `origin`, number `seq` there, taken under `term`.
CREATE TABLE history (
    pos     bigserial PRIMARY KEY,
    origin  text   NOT NULL,
    seq     bigint NOT NULL CHECK (seq >= 0),
    term    bigint NOT NULL CHECK (term > 0),
    time_ns bigint NOT NULL CHECK (time_ns >= 0),
    entry   bytea  NOT NULL,
    UNIQUE (origin, seq)
);

ALTER TABLE commit_datasets DROP CONSTRAINT commit_datasets_committing_seq_fkey;
ALTER TABLE commit_datasets DROP CONSTRAINT commit_datasets_pkey;
ALTER TABLE commits DROP CONSTRAINT commits_pkey;
ALTER TABLE commits ADD COLUMN origin text NOT NULL DEFAULT '';
ALTER TABLE commit_datasets ADD COLUMN origin text NOT NULL DEFAULT '';
ALTER TABLE commits ADD PRIMARY KEY (origin, committing_seq);
ALTER TABLE commit_datasets ADD PRIMARY KEY (origin, committing_seq, dataset);
ALTER TABLE commit_datasets ADD FOREIGN KEY (origin, committing_seq)
    REFERENCES commits (origin, committing_seq);

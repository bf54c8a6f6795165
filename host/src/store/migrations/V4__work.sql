-- Schema version 4: every host is a worker (DESIGN.md, "Beyond one
-- machine"). A leader with no worker free posts a cleared run here; a
-- standby's crew claims it (FOR UPDATE SKIP LOCKED), flies it and lands it
-- under its claim: its commit and its records are refused once the claim
-- is lost (its host's beat lapsed, or the lead changed hands).

-- How many runs each host flies at once (its crew's size while it stands by).
ALTER TABLE hosts ADD COLUMN workers bigint NOT NULL DEFAULT 0 CHECK (workers >= 0);

CREATE TABLE work (
    id      bigserial PRIMARY KEY,
    runway  text   NOT NULL,
    attempt bigint NOT NULL CHECK (attempt > 0),
    -- The term of the leader that posted it.
    term    bigint NOT NULL CHECK (term > 0),
    -- The agent's component: a crew claims only what it has loaded.
    digest  bytea  NOT NULL,
    -- What the run needs (action, input, grants, limits), as the leader
    -- encoded it.
    request bytea  NOT NULL,
    state   text   NOT NULL DEFAULT 'posted'
            CHECK (state IN ('posted', 'claimed', 'committed', 'ended', 'lost')),
    -- The crew (shard origin) that claimed it.
    crew    text,
    -- The sequence number of its COMMITTING record in the crew's shard,
    -- once its commit landed (the commits row's key).
    committing bigint,
    -- Who cancelled it, while it flies.
    cancel  text,
    -- How it ended, as the crew encoded its report.
    report  bytea,
    UNIQUE (runway, attempt)
);
CREATE INDEX work_posted ON work (id) WHERE state = 'posted';

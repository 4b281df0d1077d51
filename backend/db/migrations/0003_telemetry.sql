-- Telemetry: what the registry knows about each logger's state and broker credential, when each reading
-- was stored, and the dead letters nobody could turn into readings.

-- The broker credential is kept only as an Argon2 hash: it proves which password was issued and when,
-- while the broker holds its own (PBKDF2) copy in its password file.
ALTER TABLE loggers
    ADD COLUMN broker_password_hash    text,
    ADD COLUMN broker_password_set_at  timestamptz,
    -- From the logger's retained status messages; NULL until it first reports.
    ADD COLUMN online                  boolean,
    ADD COLUMN status_at               timestamptz,
    ADD COLUMN battery_pct             smallint CHECK (battery_pct BETWEEN 0 AND 100),
    ADD COLUMN reported_firmware       text,
    -- When a fresh (not retained) status last arrived; readings say the same through their own table.
    ADD COLUMN last_seen_at            timestamptz;

CREATE INDEX loggers_owner ON loggers (owner_site, id);

-- `received_at` is when the bridge took the reading off the broker (kept across its disk buffer), so this
-- column says when the backend committed it: the difference is the pipeline's lag.
ALTER TABLE readings ADD COLUMN stored_at timestamptz NOT NULL DEFAULT now();

-- Messages that could not become readings: the bridge's own (bad topic, malformed, CRC, implausible...)
-- and the backend's (readings and statuses of loggers that are not registered or not active). Kept whole
-- for review. A retried batch carries the same batch_id, so (batch_id, origin, item_index) keeps retries
-- from doubling; a reading of an unknown logger is kept once per (logger, ts) like any reading.
CREATE TABLE dead_letters (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id     text NOT NULL,
    bridge_id    text NOT NULL,
    origin       text NOT NULL CHECK (origin IN ('bridge', 'reading', 'status')),
    item_index   integer NOT NULL CHECK (item_index >= 0),
    kind         text NOT NULL,
    reason       text NOT NULL,
    topic        text,
    payload      bytea NOT NULL,
    logger_id    text,
    reading_ts   timestamptz,
    received_at  timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (batch_id, origin, item_index)
);
CREATE UNIQUE INDEX dead_letters_reading ON dead_letters (logger_id, reading_ts) WHERE origin = 'reading';
CREATE INDEX dead_letters_received ON dead_letters (received_at);
CREATE INDEX dead_letters_logger ON dead_letters (logger_id, received_at) WHERE logger_id IS NOT NULL;

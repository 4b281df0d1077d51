-- Sign-in throttling shared by every backend worker: failed attempts and the lockouts they cause.
-- Kept in PostgreSQL, not in process memory, so several workers (or replicas) count the same failures.

-- One row per failed sign-in. `username` is what was typed (lower-cased), whether or not such a user
-- exists, so that probing unknown names is throttled exactly like guessing a real user's password.
CREATE TABLE login_failures (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username  text NOT NULL CHECK (length(username) <= 64),
    client    text NOT NULL CHECK (length(client) <= 64),
    at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX login_failures_username ON login_failures (username, at);
CREATE INDEX login_failures_client ON login_failures (client, at);

-- A lockout of one username or one client address until `locked_until`, or until an administrator
-- unlocks it. Rows stay as history; every lockout and unlock is also written to the audit log.
CREATE TABLE login_lockouts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope         text NOT NULL CHECK (scope IN ('username', 'client')),
    subject       text NOT NULL CHECK (length(subject) <= 64),
    locked_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    locked_until  timestamptz NOT NULL,
    unlocked_at   timestamptz,
    unlocked_by   bigint REFERENCES users (id)
);
CREATE INDEX login_lockouts_active ON login_lockouts (scope, subject, locked_until)
    WHERE unlocked_at IS NULL;

-- EPCIS 2.0 capture jobs (issue 22): a captured document is answered 202 with the job's address, and the
-- job tells whether the document was captured, and each event's error. The job is visible to the sites
-- its submitter was bound to when it was sent (as a scan is addressed to the scanner's sites).
CREATE TABLE epcis_captures (
    id              text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    submitted_by    bigint NOT NULL REFERENCES users (id),
    sites           text[] NOT NULL,
    error_behaviour text NOT NULL CHECK (error_behaviour IN ('rollback', 'proceed')),
    event_count     integer NOT NULL CHECK (event_count >= 0),
    running         boolean NOT NULL DEFAULT true,
    success         boolean,
    -- Per event: recorded, ignored (names nothing Celltrail records) or an error, with the reason.
    outcome         jsonb NOT NULL DEFAULT '[]',
    -- Problems of the document as a whole (one per problem, with its path), when there are any.
    errors          jsonb NOT NULL DEFAULT '[]',
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CHECK (running = (finished_at IS NULL)),
    CHECK (running = (success IS NULL))
);

CREATE INDEX epcis_captures_sites ON epcis_captures USING gin (sites);
CREATE INDEX epcis_captures_created ON epcis_captures (created_at DESC, id);

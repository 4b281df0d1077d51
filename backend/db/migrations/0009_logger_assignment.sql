-- Every logger behind its site. A shipment may carry a logger only when the logger is owned by, or lent
-- to, one of the planner's sites, and only while the logger is on no other active shipment: that one
-- active shipment is the logger's assignment, and the ingest statement files readings by it alone.

-- One active shipment per logger. The planning service checks first, to answer in words; this index is
-- what keeps two concurrent plans from both winning (the second insert fails on it and rolls back).
-- "Active" is every status but the final three, the same list as backend/db/repo/shipments.py and the
-- ingest statement in backend/db/repo/readings.py use. A database that already holds two active
-- shipments with one logger cannot take the index; the upgrade stops and names them rather than
-- guessing which of the two really carries the logger.
DO $$
DECLARE
    clashes text;
BEGIN
    SELECT string_agg(logger_id || ' (' || ids || ')', '; ' ORDER BY logger_id) INTO clashes
    FROM (SELECT logger_id, string_agg(id, ', ' ORDER BY id) AS ids
          FROM shipments
          WHERE logger_id IS NOT NULL AND status NOT IN ('received', 'quarantined', 'cancelled')
          GROUP BY logger_id HAVING count(*) > 1) AS doubled;
    IF clashes IS NOT NULL THEN
        RAISE EXCEPTION 'loggers on more than one active shipment: %; receive or cancel all but one '
                        'shipment of each logger, then upgrade again', clashes;
    END IF;
END $$;

CREATE UNIQUE INDEX shipments_one_active_per_logger ON shipments (logger_id)
    WHERE status NOT IN ('received', 'quarantined', 'cancelled');

-- A logger lent by its owner site to another site, which may then plan shipments with it (and print its
-- asset tag) until the loan is revoked. Loans are kept as history: revoking one stamps it, and a new
-- loan is a new row. Every loan and revocation is also in the audit trail.
CREATE TABLE logger_loans (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    logger_id      text NOT NULL REFERENCES loggers (id),
    site           text NOT NULL REFERENCES sites (code),
    lent_by        bigint NOT NULL REFERENCES users (id),
    lent_at        timestamptz NOT NULL DEFAULT now(),
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    revoked_by     bigint REFERENCES users (id),
    revoked_at     timestamptz,
    revoke_reason  text CHECK (length(revoke_reason) <= 1000),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
-- At most one open loan of a logger to a site; also the look-up of the planning check.
CREATE UNIQUE INDEX logger_loans_open ON logger_loans (logger_id, site) WHERE revoked_at IS NULL;
CREATE INDEX logger_loans_site ON logger_loans (site) WHERE revoked_at IS NULL;

-- A loan decides who may use another site's logger, so its history is a record: rows are never deleted,
-- and the only change is revoking an open loan, once.
CREATE FUNCTION logger_loan_revoke_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL
       OR (NEW.id, NEW.logger_id, NEW.site, NEW.lent_by, NEW.lent_at, NEW.reason)
          IS DISTINCT FROM (OLD.id, OLD.logger_id, OLD.site, OLD.lent_by, OLD.lent_at, OLD.reason) THEN
        RAISE EXCEPTION 'a logger loan can only be revoked, once; lend the logger again instead'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER logger_loans_revoke_only BEFORE UPDATE ON logger_loans
    FOR EACH ROW EXECUTE FUNCTION logger_loan_revoke_only();
CREATE TRIGGER logger_loans_kept BEFORE DELETE ON logger_loans
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER logger_loans_no_truncate BEFORE TRUNCATE ON logger_loans
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

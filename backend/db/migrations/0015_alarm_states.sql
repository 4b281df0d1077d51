-- Alarm states after ANSI/ISA-18.2 (issue 20; backend/domain/alarm_states.py says what each means).
-- A critical alert whose condition ends before anyone acknowledged it latches as
-- 'cleared_unacknowledged' and stays on the board until acknowledged. It is no longer an active
-- condition, so the partial unique index on open/acknowledged keys is unchanged: a new excursion of
-- the same kind may open meanwhile.
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_status_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_status_check
    CHECK (status IN ('open', 'acknowledged', 'cleared_unacknowledged', 'resolved', 'closed'));
CREATE INDEX alerts_latched ON alerts (id) WHERE status = 'cleared_unacknowledged';

-- Every acknowledgement, in order: who, when, the comment, and the state and severity it acknowledged.
-- The alert's own acknowledged_* columns keep the first one; a second acknowledgement (after an
-- escalation, or by a second person) is added here and never replaces it.
CREATE TABLE alert_acknowledgements (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id       bigint NOT NULL REFERENCES alerts (id),
    user_id        bigint REFERENCES users (id),
    username       text NOT NULL,
    full_name      text NOT NULL,
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    comment        text NOT NULL,
    status_before  text NOT NULL,
    status_after   text NOT NULL,
    severity       text NOT NULL
);
CREATE INDEX alert_acknowledgements_alert ON alert_acknowledgements (alert_id, id);
CREATE TRIGGER alert_acknowledgements_append_only BEFORE UPDATE OR DELETE ON alert_acknowledgements
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER alert_acknowledgements_no_truncate BEFORE TRUNCATE ON alert_acknowledgements
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The acknowledgements made before this migration become the first entry of their alert's history.
INSERT INTO alert_acknowledgements
    (alert_id, user_id, username, full_name, at, comment, status_before, status_after, severity)
SELECT a.id, a.acknowledged_by, coalesce(u.username, ''), coalesce(u.full_name, ''), a.acknowledged_at,
       coalesce(a.ack_comment, ''), 'open', 'acknowledged', a.severity
FROM alerts a LEFT JOIN users u ON u.id = a.acknowledged_by
WHERE a.acknowledged_at IS NOT NULL
ORDER BY a.acknowledged_at, a.id;

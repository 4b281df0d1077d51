-- Reminders (issue 20): critical alerts are delivered again while unacknowledged (active or latched after
-- they cleared) and, at a slower pace, while acknowledged but still active. The housekeeping look-up
-- reads only those.
CREATE INDEX alerts_remindable ON alerts (id)
    WHERE severity = 'critical' AND status IN ('open', 'acknowledged', 'cleared_unacknowledged');

-- A history of finished work, generated in SQL: :loggers loggers, each with :legs finished two-day
-- legs (received, in the past), plus one leg under way per logger; readings every :step minutes for
-- the first :reading_loggers loggers' legs. Parameters are substituted by the test (str.format).
INSERT INTO sites (code, name, kind, time_zone) VALUES
    ('HIST-A', 'History sender', 'manufacturing', 'UTC'),
    ('HIST-B', 'History receiver', 'hospital', 'UTC')
ON CONFLICT DO NOTHING;
INSERT INTO users (username, full_name, password_hash) VALUES ('history', 'History loader', 'x')
ON CONFLICT DO NOTHING;
INSERT INTO temperature_profiles (code, version, name, definition, status)
VALUES ('hist', 1, 'History', '{{"low_c": null, "high_c": -150.0, "critical_high_c": -150.0,
        "consecutive_minutes": 5, "predictive": false}}', 'approved')
ON CONFLICT DO NOTHING;
INSERT INTO loggers (id, model, owner_site)
SELECT 'LGR-H' || g, 'hist', 'HIST-A' FROM generate_series(1, {loggers}) g;
INSERT INTO cases (coi, treatment_site, therapy, created_by)
SELECT 'CHH' || lpad(g::text, 12, '0'), 'HIST-B', 'history', (SELECT id FROM users WHERE username = 'history')
FROM generate_series(1, {loggers} * ({legs} + 1)) g;
-- Finished legs: leg n of logger l departs (legs - n + 1) * 3 days ago and is received two days later.
INSERT INTO shipments (id, coi, from_site, to_site, container_id, logger_id, profile_code, profile_version,
                       profile, planned_departure, planned_arrival, status, departed_at, arrived_at,
                       received_at)
SELECT 'SHP-' || lpad((9000 + (k / 1000000))::text, 4, '0') || '-' || lpad((k % 1000000)::text, 6, '0'),
       'CHH' || lpad(k::text, 12, '0'), 'HIST-A', 'HIST-B', 'C-' || k, 'LGR-H' || l, 'hist', 1, '{{}}',
       d, d + interval '2 days', 'received', d, d + interval '2 days', d + interval '2 days'
FROM generate_series(1, {loggers}) l, generate_series(1, {legs}) n,
     LATERAL (SELECT (l - 1) * ({legs} + 1) + n AS k,
                     date_trunc('hour', now()) - ({legs} - n + 2) * interval '3 days' AS d) x;
-- One leg under way per logger.
INSERT INTO shipments (id, coi, from_site, to_site, container_id, logger_id, profile_code, profile_version,
                       profile, planned_departure, planned_arrival, status, departed_at)
SELECT 'SHP-' || lpad((9000 + (k / 1000000))::text, 4, '0') || '-' || lpad((k % 1000000)::text, 6, '0'),
       'CHH' || lpad(k::text, 12, '0'), 'HIST-A', 'HIST-B', 'C-' || k, 'LGR-H' || l, 'hist', 1, '{{}}',
       now() - interval '1 hour', now() + interval '1 day', 'in_transit', now() - interval '1 hour'
FROM generate_series(1, {loggers}) l, LATERAL (SELECT l * ({legs} + 1) AS k) x;
INSERT INTO readings (logger_id, ts, temp_c, shipment_id, received_at)
SELECT s.logger_id, t, -160, s.id, t
FROM shipments s, generate_series(s.leg_from, coalesce(s.leg_until, now()) - interval '1 second',
                                  interval '{step} minutes') t
WHERE s.logger_id IN (SELECT 'LGR-H' || g FROM generate_series(1, {reading_loggers}) g);
-- Each finished leg left a closed alert behind.
INSERT INTO alerts (kind, severity, status, title, detail, coi, shipment_id, logger_id, sites, condition_key,
                    started_at, ended_at, closed_at)
SELECT 'logger_silent', 'warning', 'closed', 'history', 'history', s.coi, s.id, s.logger_id,
       ARRAY['HIST-A', 'HIST-B'], 'logger_silent:' || s.id, s.departed_at, s.received_at, s.received_at
FROM shipments s WHERE s.status = 'received';
ANALYZE;

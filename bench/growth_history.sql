-- The growth benchmark's history of finished work (bench/growth.py), after tests/integration/scaling/
-- history.sql: {loggers} loggers (the measured fleet's among them), each with {legs} finished two-day
-- legs (one every three days, received), a closed alert per leg, an engine state per leg; {closed}
-- completed cases (a case per leg, then cases without a shipment), each with one infused bag and
-- {events} custody events. The readings of the legs are loaded by COPY afterwards. Run with triggers
-- off (session_replication_role = replica): these rows are history, not news, so they mark no leg for
-- the engine and announce nothing; the columns the triggers would fill are written here.
INSERT INTO loggers (id, model, owner_site)
SELECT 'LGR-G' || lpad(g::text, 6, '0'), 'growth', 'GRW-A' FROM generate_series(1, {loggers}) g
ON CONFLICT DO NOTHING;
INSERT INTO cases (coi, treatment_site, therapy, created_by, status, chain_length, created_at)
SELECT 'CHH' || lpad(g::text, 12, '0'), 'GRW-B', 'growth', (SELECT id FROM users WHERE username = 'growth'),
       'completed', {events}, now() - interval '120 days'
FROM generate_series(1, {closed}) g;
INSERT INTO units (id, coi, kind, product, status, site)
SELECT 'CHH' || lpad(g::text, 12, '0') || '-APH-01', 'CHH' || lpad(g::text, 12, '0'), 'APH', 'Apheresis',
       'infused', 'GRW-B'
FROM generate_series(1, {closed}) g;
INSERT INTO custody_events (coi, seq, action, outcome, detail, actor_id, actor_name, site, server_time,
                            prev_hash, hash)
SELECT 'CHH' || lpad(g::text, 12, '0'), e, 'history', 'accepted', 'growth history',
       (SELECT id FROM users WHERE username = 'growth'), 'growth', 'GRW-B', now() - interval '120 days',
       CASE WHEN e > 1 THEN decode(md5(g || ':' || (e - 1)), 'hex') END, decode(md5(g || ':' || e), 'hex')
FROM generate_series(1, {closed}) g, generate_series(1, {events}) e;
-- Leg n of logger l departs (legs - n + 2) * 3 days before this hour and is received two days later.
INSERT INTO shipments (id, coi, from_site, to_site, container_id, logger_id, profile_code, profile_version,
                       profile, planned_departure, planned_arrival, status, departed_at, arrived_at,
                       received_at, packed_at, leg_from, leg_until)
SELECT 'SHP-' || lpad((9000 + (k / 1000000))::text, 4, '0') || '-' || lpad((k % 1000000)::text, 6, '0'),
       'CHH' || lpad(k::text, 12, '0'), 'GRW-A', 'GRW-B', 'C-' || k, 'LGR-G' || lpad(l::text, 6, '0'),
       'growth', 1, '{{}}', d, d + interval '2 days', 'received', d, d + interval '2 days',
       d + interval '2 days', d, d, d + interval '2 days'
FROM generate_series(1, {loggers}) l, generate_series(1, {legs}) n,
     LATERAL (SELECT (l - 1) * {legs} + n AS k,
                     date_trunc('hour', now()) - ({legs} - n + 2) * interval '3 days' AS d) x;
INSERT INTO excursion_state (shipment_id, through_ts, readings, evaluated_at, runs)
SELECT id, received_at - interval '2 minutes', 1440, received_at, 1 FROM shipments WHERE coi LIKE 'CHH%';
INSERT INTO alerts (kind, severity, status, title, detail, coi, shipment_id, logger_id, sites, condition_key,
                    started_at, ended_at, closed_at)
SELECT 'logger_silent', 'warning', 'closed', 'history', 'history', s.coi, s.id, s.logger_id,
       ARRAY['GRW-A', 'GRW-B'], 'logger_silent:' || s.id, s.departed_at, s.received_at, s.received_at
FROM shipments s WHERE s.coi LIKE 'CHH%';

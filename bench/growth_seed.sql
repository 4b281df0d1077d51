-- The growth benchmark's work in flight (bench/growth.py), measured at both sizes: {fleet} loggers each on
-- a two-day leg under way since an hour ago, one case whose finished leg the case report reads (its
-- readings are loaded by COPY), and {scan_cases} cases with a bag each for the custody scans.
INSERT INTO sites (code, name, kind, time_zone) VALUES
    ('GRW-A', 'Growth sender', 'manufacturing', 'UTC'),
    ('GRW-B', 'Growth receiver', 'hospital', 'UTC');
INSERT INTO users (username, full_name, password_hash) VALUES ('growth', 'Growth bench', 'x');
INSERT INTO temperature_profiles (code, version, name, definition, status)
VALUES ('growth', 1, 'Growth', '{profile}', 'approved');
INSERT INTO loggers (id, model, owner_site)
SELECT 'LGR-G' || lpad(g::text, 6, '0'), 'growth', 'GRW-A' FROM generate_series(1, {fleet} + 1) g;
INSERT INTO cases (coi, treatment_site, therapy, created_by)
SELECT 'CHF' || lpad(g::text, 12, '0'), 'GRW-B', 'growth', (SELECT id FROM users WHERE username = 'growth')
FROM generate_series(1, {fleet} + 1) g;
INSERT INTO shipments (id, coi, from_site, to_site, container_id, logger_id, profile_code, profile_version,
                       profile, planned_departure, planned_arrival, status, departed_at)
SELECT 'SHP-8000-' || lpad(g::text, 6, '0'), 'CHF' || lpad(g::text, 12, '0'), 'GRW-A', 'GRW-B', 'F-' || g,
       'LGR-G' || lpad(g::text, 6, '0'), 'growth', 1, '{profile}', now() - interval '1 hour',
       now() + interval '47 hours', 'in_transit', now() - interval '1 hour'
FROM generate_series(1, {fleet}) g;
-- The report's leg: the logger after the fleet's, departed three days before this hour, received a day ago.
INSERT INTO shipments (id, coi, from_site, to_site, container_id, logger_id, profile_code, profile_version,
                       profile, planned_departure, planned_arrival, status, departed_at, arrived_at,
                       received_at)
SELECT 'SHP-8001-000001', 'CHF' || lpad(({fleet} + 1)::text, 12, '0'), 'GRW-A', 'GRW-B', 'F-report',
       'LGR-G' || lpad(({fleet} + 1)::text, 6, '0'), 'growth', 1, '{profile}', d, d + interval '2 days',
       'received', d, d + interval '2 days', d + interval '2 days'
FROM (SELECT date_trunc('hour', now()) - interval '3 days' AS d) x;
INSERT INTO cases (coi, treatment_site, therapy, created_by)
SELECT 'CHS' || lpad(g::text, 12, '0'), 'GRW-A', 'growth', (SELECT id FROM users WHERE username = 'growth')
FROM generate_series(1, {scan_cases}) g;
INSERT INTO units (id, coi, kind, product, status, site)
SELECT 'CHS' || lpad(g::text, 12, '0') || '-APH-01', 'CHS' || lpad(g::text, 12, '0'), 'APH', 'Apheresis',
       'registered', 'GRW-A'
FROM generate_series(1, {scan_cases}) g;

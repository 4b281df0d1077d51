-- Work in flight, indexed as in flight: the board, the shipment list's active view, the silent-logger
-- and lateness checks read only shipments that are not finished, and the alert checks only open alerts,
-- so each reads an index of those rows alone and its cost follows what is under way rather than every
-- shipment or alert ever made.
CREATE INDEX shipments_active ON shipments (planned_departure)
    WHERE status NOT IN ('received', 'quarantined', 'cancelled');
CREATE INDEX alerts_open_kind ON alerts (kind, logger_id) WHERE status IN ('open', 'acknowledged');

-- The ingest statement's leg look-up (backend/db/repo/readings.py): a logger's legs that have a window
-- and did not end before the batch's first reading. Keyed on exactly that, an open leg sorting last, so
-- the look-up reads the legs that may hold the reading and not the logger's finished ones.
CREATE INDEX shipments_leg_lookup ON shipments (logger_id, (coalesce(leg_until, 'infinity'::timestamptz)))
    WHERE leg_from IS NOT NULL;

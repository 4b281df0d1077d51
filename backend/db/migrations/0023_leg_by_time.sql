-- A leg's readings are defined by time (issue 20, finding 5): those its logger took from packing (the
-- first custody step that puts the item in the container) until receipt, whatever the order in which
-- readings and custody steps reach the server. A reading's `shipment_id` is where it was filed when it
-- was stored (readings are append-only records); the engine, the summaries and the reports read a leg
-- by its window instead, and every change of the window re-evaluates the leg.

-- When the first accepted packing step happened: the scanning device's time for an offline scan, never
-- later than the server learned of it.
ALTER TABLE shipments
    ADD COLUMN packed_at timestamptz,
    -- The leg's window [leg_from, leg_until): packing (else pick-up, else the planned departure until a
    -- custody step says more), never before the logger's previous receipt; until receipt (open while
    -- under way). NULL leg_from: the leg takes no readings (no logger, or cancelled).
    ADD COLUMN leg_from timestamptz,
    ADD COLUMN leg_until timestamptz;

UPDATE shipments s SET packed_at = p.at
FROM (SELECT shipment_id, min(least(coalesce(device_time, server_time), server_time)) AS at
      FROM custody_events WHERE action = 'pack' AND outcome = 'accepted' AND shipment_id IS NOT NULL
      GROUP BY shipment_id) p
WHERE p.shipment_id = s.id;

CREATE FUNCTION shipment_leg_window() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.logger_id IS NULL OR NEW.status = 'cancelled' THEN
        NEW.leg_from := NULL;
    ELSE
        -- least() and greatest() skip NULLs: packing or pick-up, whichever came first.
        NEW.leg_from := greatest(
            coalesce(least(NEW.packed_at, NEW.departed_at), NEW.planned_departure),
            (SELECT max(p.received_at) FROM shipments p
             WHERE p.logger_id = NEW.logger_id AND p.id <> NEW.id
               AND p.received_at < coalesce(NEW.received_at, 'infinity'::timestamptz)));
    END IF;
    NEW.leg_until := NEW.received_at;
    RETURN NEW;
END $$;

CREATE TRIGGER shipments_leg_window BEFORE INSERT OR UPDATE OF
        logger_id, status, packed_at, departed_at, planned_departure, received_at ON shipments
    FOR EACH ROW EXECUTE FUNCTION shipment_leg_window();

-- Existing legs get their window; they are not marked for re-evaluation (the next reading or custody
-- step of a leg under way does that), so an upgrade does not recompute every leg ever shipped.
UPDATE shipments SET status = status WHERE logger_id IS NOT NULL;

-- A window that moved changes which readings the leg holds: mark it for the engine. A changed start
-- (or logger) recomputes the whole leg; a changed end only from the earlier of the two ends, which is a
-- full recomputation only when readings beyond the new end were folded.
CREATE FUNCTION shipment_leg_moved() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    logger text := coalesce(NEW.logger_id, OLD.logger_id);
BEGIN
    IF logger IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO excursion_dirty (shipment_id, logger_id, from_ts)
    VALUES (NEW.id, logger,
            -- The epoch, not -infinity: drivers read infinities as naive dates. No reading is older
            -- (the bridge refuses a logger clock reset to 1970).
            CASE WHEN (OLD.leg_from, OLD.logger_id) IS DISTINCT FROM (NEW.leg_from, NEW.logger_id)
                 THEN 'epoch'::timestamptz
                 ELSE least(OLD.leg_until, NEW.leg_until) END);
    RETURN NULL;
END $$;

-- No column list: the window changes in the BEFORE trigger, which an UPDATE OF list would not see.
CREATE TRIGGER shipments_leg_moved AFTER UPDATE ON shipments
    FOR EACH ROW
    WHEN ((OLD.leg_from, OLD.leg_until, OLD.logger_id) IS DISTINCT FROM (NEW.leg_from, NEW.leg_until, NEW.logger_id))
    EXECUTE FUNCTION shipment_leg_moved();

-- Packing sets the start of the leg, whichever path recorded the step (scan, EPCIS capture, replay).
CREATE FUNCTION custody_pack_starts_leg() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := least(coalesce(NEW.device_time, NEW.server_time), NEW.server_time);
BEGIN
    UPDATE shipments SET packed_at = at
    WHERE id = NEW.shipment_id AND (packed_at IS NULL OR packed_at > at);
    RETURN NULL;
END $$;

CREATE TRIGGER custody_events_pack_starts_leg AFTER INSERT ON custody_events
    FOR EACH ROW WHEN (NEW.action = 'pack' AND NEW.outcome = 'accepted' AND NEW.shipment_id IS NOT NULL)
    EXECUTE FUNCTION custody_pack_starts_leg();


CREATE INDEX shipments_logger_leg ON shipments (logger_id, leg_until);

-- A leg's readings: its logger's, inside its window. Inlined by the planner, so a caller's conditions on
-- ts reach the (logger_id, ts) index.
CREATE FUNCTION leg_readings(p_shipment text) RETURNS SETOF readings LANGUAGE sql STABLE AS $$
    SELECT r.* FROM shipments s JOIN readings r ON r.logger_id = s.logger_id
    WHERE s.id = p_shipment AND r.ts >= s.leg_from AND (s.leg_until IS NULL OR r.ts < s.leg_until)
$$;

-- Readings reach their table only through the ingest statement (backend/db/repo/readings.py), which
-- keeps readings of loggers the registry knows and links each to a shipment it found by a join: every
-- reference is valid when it is written. The foreign keys checked that again row by row, a key-share
-- look-up of the logger and of the shipment for every reading, and cost a quarter of the ingest rate
-- (database alone, one connection: 24,700 -> 32,900 readings/s through the ingest statement, COPY
-- 55,000 -> 166,000). What they also guaranteed, that a referenced logger or shipment cannot vanish, is
-- kept here: loggers and shipments are deactivated or closed, never deleted, truncated or renumbered.
ALTER TABLE readings
    DROP CONSTRAINT readings_logger_id_fkey,
    DROP CONSTRAINT readings_shipment_id_fkey;

CREATE FUNCTION refuse_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: readings and custody records refer to its rows; deactivate instead',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER loggers_kept BEFORE DELETE ON loggers
    FOR EACH ROW EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER loggers_kept_whole BEFORE TRUNCATE ON loggers
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER loggers_id_kept BEFORE UPDATE OF id ON loggers
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION refuse_removal();

CREATE TRIGGER shipments_kept BEFORE DELETE ON shipments
    FOR EACH ROW EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER shipments_kept_whole BEFORE TRUNCATE ON shipments
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER shipments_id_kept BEFORE UPDATE OF id ON shipments
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION refuse_removal();

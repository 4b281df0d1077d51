-- Readings partitioned by month of the reading's time (issue 26): a month's readings live in their own
-- table, so what a query of recent readings reads, and what a month's index costs to keep, does not grow
-- with the years stored, and an old month can later be detached whole. The existing table is converted
-- in place: renamed, a partitioned table of the same columns created, its rows moved, the old one dropped.
--
-- The primary key (logger_id, ts) already holds the partition key, so it stays the key, and the ingest
-- statement's ON CONFLICT (logger_id, ts) keeps working. The (shipment_id, ts) index is not recreated:
-- a leg's readings are its logger's inside its window (migration 0023), which the key already orders,
-- and the board, its last user, now reads the leg's last reading that way.

-- leg_readings returns the table's row type: dropped with the old table and recreated below.
DROP FUNCTION leg_readings(text);

ALTER TABLE readings RENAME TO readings_unpartitioned;
ALTER TABLE readings_unpartitioned RENAME CONSTRAINT readings_pkey TO readings_unpartitioned_pkey;
ALTER INDEX readings_shipment RENAME TO readings_unpartitioned_shipment;

CREATE TABLE readings (
    logger_id    text NOT NULL,
    ts           timestamptz NOT NULL,
    temp_c       real NOT NULL,
    battery_pct  smallint,
    lid_open     boolean,
    shipment_id  text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    stored_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (logger_id, ts)
) PARTITION BY RANGE (ts);

-- A reading whose month has no partition (a logger clock far off, housekeeping stopped for months) is
-- kept here rather than refused; creating that month's partition later moves it.
CREATE TABLE readings_default PARTITION OF readings DEFAULT;

-- The month partitions from `p_from`'s month through `p_months_ahead` months after the current one,
-- each created once (a partition that exists is left alone). Runs as the schema's owner: the application
-- role creates no tables, yet its housekeeping keeps months ready ahead (backend/services/housekeeping.py).
-- Readings of a new month already in the default partition are moved into the month's partition first
-- (PostgreSQL refuses to attach a range the default partition holds rows of); they are moved, not
-- re-inserted through the parent, so no leg is marked for re-evaluation by the move.
-- Creating a partition locks the parent table briefly; the lock is not waited for long behind a long
-- query (ingest would queue behind the wait), the next housekeeping tick tries again instead.
CREATE FUNCTION ensure_readings_partitions(p_months_ahead integer, p_from timestamptz DEFAULT now())
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT SET TimeZone = 'UTC' SET lock_timeout = '2s' AS $$
DECLARE
    month timestamptz := date_trunc('month', p_from, 'UTC');
    last_month timestamptz := date_trunc('month', now(), 'UTC') + make_interval(months => p_months_ahead);
    name text;
    created integer := 0;
    held boolean;
BEGIN
    IF p_months_ahead < 0 OR p_months_ahead > 120 THEN
        RAISE EXCEPTION 'months ahead must be between 0 and 120, not %', p_months_ahead;
    END IF;
    WHILE month <= last_month LOOP
        name := 'readings_' || to_char(month AT TIME ZONE 'UTC', '"y"YYYY"m"MM');
        IF to_regclass(quote_ident(name)) IS NULL THEN
            -- One creator at a time across replicas; whoever comes second finds the partition made.
            PERFORM pg_advisory_xact_lock(hashtext('ensure_readings_partitions'));
            IF to_regclass(quote_ident(name)) IS NULL THEN
                EXECUTE format('SELECT EXISTS (SELECT 1 FROM readings_default WHERE ts >= %L AND ts < %L)',
                               month, month + interval '1 month') INTO held;
                IF held THEN
                    ALTER TABLE readings DETACH PARTITION readings_default;
                    ALTER TABLE readings_default RENAME TO readings_default_moving;
                    EXECUTE format('CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)',
                                   name, month, month + interval '1 month');
                    CREATE TABLE readings_default PARTITION OF readings DEFAULT;
                    EXECUTE format('INSERT INTO %I SELECT * FROM readings_default_moving WHERE ts >= %L AND ts < %L',
                                   name, month, month + interval '1 month');
                    EXECUTE format('INSERT INTO readings_default SELECT * FROM readings_default_moving
                                    WHERE NOT (ts >= %L AND ts < %L)', month, month + interval '1 month');
                    DROP TABLE readings_default_moving;
                ELSE
                    EXECUTE format('CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)',
                                   name, month, month + interval '1 month');
                END IF;
                created := created + 1;
            END IF;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN created;
END $$;
REVOKE ALL ON FUNCTION ensure_readings_partitions(integer, timestamptz) FROM PUBLIC;

-- Months of the readings already stored, through two months ahead, then the rows.
SELECT ensure_readings_partitions(2, coalesce((SELECT min(ts) FROM readings_unpartitioned), now()));
INSERT INTO readings (logger_id, ts, temp_c, battery_pct, lid_open, shipment_id, received_at, stored_at)
SELECT logger_id, ts, temp_c, battery_pct, lid_open, shipment_id, received_at, stored_at
FROM readings_unpartitioned;
DROP TABLE readings_unpartitioned;

-- The triggers of migrations 0004 and 0007, after the move (moved rows are not new readings). A row
-- trigger on the parent is cloned to every partition, present and future.
CREATE TRIGGER readings_mark_dirty AFTER INSERT ON readings
    REFERENCING NEW TABLE AS new_readings FOR EACH STATEMENT EXECUTE FUNCTION mark_excursion_dirty();
CREATE TRIGGER readings_append_only BEFORE UPDATE OR DELETE ON readings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE FUNCTION leg_readings(p_shipment text) RETURNS SETOF readings LANGUAGE sql STABLE AS $$
    SELECT r.* FROM shipments s JOIN readings r ON r.logger_id = s.logger_id
    WHERE s.id = p_shipment AND r.ts >= s.leg_from AND (s.leg_until IS NULL OR r.ts < s.leg_until)
$$;

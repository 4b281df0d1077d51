-- A logger's latest reading without asking every month of readings. `ORDER BY ts DESC LIMIT 1` over the
-- partitioned table merges the newest entry of every partition (the default partition keeps PostgreSQL
-- from walking the months in order), so its cost grew with the months kept hot. This walks the monthly
-- partitions newest first and stops at the first that holds a reading of the logger; the default
-- partition (readings outside the monthly ranges, older or newer) is always asked too.
CREATE FUNCTION latest_reading(p_logger text) RETURNS SETOF readings
    LANGUAGE plpgsql STABLE SET TimeZone = 'UTC' AS $$
DECLARE
    month record;
    hit readings;
    best readings;
BEGIN
    SELECT * INTO best FROM readings_default WHERE logger_id = p_logger ORDER BY ts DESC LIMIT 1;
    FOR month IN
        SELECT b.bounds[1]::timestamptz AS from_ts, b.bounds[2]::timestamptz AS to_ts
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                         'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS b(bounds)
         WHERE i.inhparent = 'readings'::regclass
         ORDER BY 2 DESC
    LOOP
        -- Newer than anything in this month: nothing earlier can be the latest.
        EXIT WHEN best.ts IS NOT NULL AND best.ts >= month.to_ts;
        -- Bounded to the month, the statement reads that partition alone.
        SELECT * INTO hit FROM readings
         WHERE logger_id = p_logger AND ts >= month.from_ts AND ts < month.to_ts
         ORDER BY ts DESC LIMIT 1;
        IF hit.ts IS NOT NULL THEN
            IF best.ts IS NULL OR hit.ts > best.ts THEN
                best := hit;
            END IF;
            EXIT;
        END IF;
    END LOOP;
    IF best.ts IS NOT NULL THEN
        RETURN NEXT best;
    END IF;
END
$$;

-- Months of readings archived to Parquet files (issue 26, backend/services/archive.py): one row per month
-- partition that was written to a file, verified and then dropped from the database. The reports read an
-- archived month from its file through this row; `celltrail restore-archive` re-attaches the month and
-- sets `restored_at`, so at most one row per month is in force at a time.
CREATE TABLE archived_readings (
    id            bigserial PRIMARY KEY,
    range_from    timestamptz NOT NULL,
    range_until   timestamptz NOT NULL,
    -- Absolute paths as written: the reports open the file wherever the archive was made.
    file_path     text NOT NULL,
    manifest_path text NOT NULL,
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    row_count     bigint NOT NULL CHECK (row_count >= 0),
    archived_at   timestamptz NOT NULL DEFAULT now(),
    restored_at   timestamptz,
    CHECK (range_until > range_from)
);
CREATE UNIQUE INDEX archived_readings_in_force ON archived_readings (range_from) WHERE restored_at IS NULL;

-- Only the schema's owner (who archives and restores: only it may detach and attach partitions) writes
-- these rows. The application role is granted INSERT and UPDATE on every table by grant_app_role; a row
-- it could mark restored would hide an archived month from the record, so the rows refuse it here.
CREATE FUNCTION archived_readings_owner_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN
        RAISE EXCEPTION 'archived_readings: % is not allowed for %', TG_OP, current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER archived_readings_owner_only BEFORE INSERT OR UPDATE OR DELETE ON archived_readings
    FOR EACH ROW EXECUTE FUNCTION archived_readings_owner_only();

-- Keyed custody chain (issue 18). From now on every custody event's link is an HMAC-SHA-256 under a
-- record key the database never holds (backend/domain/keyring.py); `key_id` names the key (an id derived
-- from it, never the key). NULL: a legacy event linked with plain SHA-256 before this migration.
ALTER TABLE custody_events ADD COLUMN key_id text CHECK (key_id ~ '^[0-9a-f]{16}$');

-- The largest event id that may be unkeyed: everything recorded before this migration. A plain link on
-- a later event is what a chain recomputed without the key looks like, and verification says so. The
-- row is written once; external checkpoints carry the same value, so a changed ceiling is noticed too.
-- `record_id` names this record (kept by backup and restore): a checkpoint directory shared by mistake
-- with another database never has that database's checkpoints compared with these chains.
CREATE TABLE record_keying (
    only_row             boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    record_id            uuid NOT NULL DEFAULT gen_random_uuid(),
    legacy_max_event_id  bigint NOT NULL,
    keyed_since          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO record_keying (legacy_max_event_id) SELECT COALESCE(max(id), 0) FROM custody_events;
CREATE TRIGGER record_keying_fixed BEFORE UPDATE OR DELETE ON record_keying
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER record_keying_no_truncate BEFORE TRUNCATE ON record_keying
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

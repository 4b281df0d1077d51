-- Stored temperature readings are records like custody events: the receipt's temperature review, the
-- excursion alerts and the vein-to-vein report are computed from them, so a changed or deleted reading
-- would silently rewrite the history a pharmacist signed. The application only ever inserts them
-- (a redelivery is `ON CONFLICT DO NOTHING`); direct UPDATE and DELETE are refused here. TRUNCATE is
-- left to the table's owner: the ingest benchmark empties the table between rounds.
CREATE TRIGGER readings_append_only BEFORE UPDATE OR DELETE ON readings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Signatures and recorded refusals already refuse UPDATE and DELETE row by row; TRUNCATE skips row
-- triggers, so it needs its own statement trigger (custody_events and audit_log have one since 0001/0002).
CREATE TRIGGER signatures_no_truncate BEFORE TRUNCATE ON signatures
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER orphan_refusals_no_truncate BEFORE TRUNCATE ON orphan_refusals
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

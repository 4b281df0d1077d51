-- Allogeneic (off-the-shelf) products (issue 25): one manufactured batch, many recipients.
--
-- A batch is a case of its own (`product_kind` 'allogeneic_batch'): its COI identifies the batch, its
-- units are the batch's bags, and the whole custody chain (labels, release, shipments, receipt, storage,
-- dispense, thaw, infusion, verify) works on it unchanged. A recipient is a treatment case opened by the
-- hospital (`product_kind` 'allogeneic_recipient') with no starting material of its own. What ties a bag
-- to its recipient is its allocation: an `allocate` event on the batch's chain (signed by the pharmacist)
-- and an `allocated` event on the recipient's chain, and one row below per allocated unit.
ALTER TABLE cases
    ADD COLUMN product_kind text NOT NULL DEFAULT 'autologous'
        CHECK (product_kind IN ('autologous', 'allogeneic_batch', 'allogeneic_recipient'));

-- What the batch was made from: a donor or a cell line (an embryonic or induced pluripotent stem cell
-- line), by whom and how many bags it yielded.
CREATE TABLE allogeneic_batches (
    coi          text PRIMARY KEY REFERENCES cases (coi),
    batch_id     text NOT NULL UNIQUE CHECK (batch_id ~ '^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$'),
    source_kind  text NOT NULL CHECK (source_kind IN ('donor', 'cell_line')),
    source_id    text NOT NULL CHECK (source_id ~ '^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$'),
    product      text NOT NULL CHECK (length(product) BETWEEN 1 AND 200),
    site         text NOT NULL REFERENCES sites (code),
    units        integer NOT NULL CHECK (units BETWEEN 1 AND 99),
    created_by   bigint NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- A unit is allocated at most once: the primary key refuses a second allocation even between two
-- concurrent requests. The row repeats what the signed `allocate` event records; the checks read both
-- and refuse when they disagree, so a row changed behind the record's back is a STOP, not a transfusion.
CREATE TABLE unit_allocations (
    unit_id        text PRIMARY KEY REFERENCES units (id),
    batch_coi      text NOT NULL REFERENCES allogeneic_batches (coi),
    recipient_coi  text NOT NULL REFERENCES cases (coi),
    event_id       bigint NOT NULL REFERENCES custody_events (id),
    allocated_by   bigint NOT NULL REFERENCES users (id),
    allocated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (unit_id LIKE batch_coi || '-%'),
    CHECK (recipient_coi <> batch_coi)
);
CREATE INDEX unit_allocations_recipient ON unit_allocations (recipient_coi);

CREATE TRIGGER unit_allocations_append_only BEFORE UPDATE OR DELETE ON unit_allocations
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER unit_allocations_no_truncate BEFORE TRUNCATE ON unit_allocations
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER allogeneic_batches_append_only BEFORE UPDATE OR DELETE ON allogeneic_batches
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

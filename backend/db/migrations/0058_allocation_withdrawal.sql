-- Withdrawing an allocation (issue 25): the recipient cannot receive the bag, or the bag is damaged.
--
-- A withdrawal is a signed `withdraw_allocation` event on the batch's chain and an
-- `allocation_withdrawn` event on the recipient's. The allocation row stays (the record keeps every
-- allocation ever made) and names the withdrawing event; a unit has at most one allocation not
-- withdrawn, so a withdrawn bag may be allocated again and a second live allocation is still refused
-- by the database, even between two requests at once.
ALTER TABLE unit_allocations DROP CONSTRAINT unit_allocations_pkey;
ALTER TABLE unit_allocations ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
ALTER TABLE unit_allocations
    ADD COLUMN withdrawn_event_id bigint REFERENCES custody_events (id),
    ADD COLUMN withdrawn_by bigint REFERENCES users (id),
    ADD COLUMN withdrawn_at timestamptz,
    ADD CONSTRAINT unit_allocations_withdrawal_whole
        CHECK ((withdrawn_event_id IS NULL) = (withdrawn_by IS NULL)
               AND (withdrawn_event_id IS NULL) = (withdrawn_at IS NULL));
CREATE UNIQUE INDEX unit_allocations_live ON unit_allocations (unit_id) WHERE withdrawn_event_id IS NULL;
CREATE INDEX unit_allocations_unit ON unit_allocations (unit_id);

-- Still append-only, with one change allowed: a live allocation is marked withdrawn once, by the
-- accepted `withdraw_allocation` event of its batch that names the unit and the allocating event.
-- Everything else (moving an allocation, un-withdrawing it, deleting it) is refused as before.
CREATE FUNCTION unit_allocations_withdraw_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.withdrawn_event_id IS NULL AND NEW.withdrawn_event_id IS NOT NULL
       AND (NEW.id, NEW.unit_id, NEW.batch_coi, NEW.recipient_coi, NEW.event_id, NEW.allocated_by,
            NEW.allocated_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.unit_id, OLD.batch_coi, OLD.recipient_coi, OLD.event_id, OLD.allocated_by,
            OLD.allocated_at)
       AND EXISTS (SELECT FROM custody_events e
                    WHERE e.id = NEW.withdrawn_event_id AND e.coi = OLD.batch_coi
                      AND e.action = 'withdraw_allocation' AND e.outcome = 'accepted'
                      AND e.unit_ids @> ARRAY[OLD.unit_id]
                      AND e.data ->> 'allocation_event_id' = OLD.event_id::text) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on % is not allowed: the record is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER unit_allocations_append_only ON unit_allocations;
CREATE TRIGGER unit_allocations_append_only BEFORE UPDATE OR DELETE ON unit_allocations
    FOR EACH ROW EXECUTE FUNCTION unit_allocations_withdraw_only();

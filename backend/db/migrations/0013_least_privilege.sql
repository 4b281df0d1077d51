-- Least privilege (issue 18). The backend at run time connects as the role `celltrail_app`, which is not
-- the owner of anything: it may only INSERT and SELECT on the record's append-only tables, and it never
-- writes a case's chain head itself. The head moves only here, in a SECURITY DEFINER function owned by
-- the schema's owner, which accepts a new head only when a stored event of that case extends the old
-- one: its sequence number follows the chain length, its previous hash is the old head and its hash is
-- the new head. Stored columns are compared; nothing is recomputed.
--
-- The grants themselves are made by backend/db/migrate.py after every migration run (`grant_app_role`),
-- so tables that later migrations add are covered too, and a restore (which drops privileges) gets them
-- back with the next `celltrail migrate`.
DO $do$
BEGIN
    -- The schema is pinned (and pg_temp searched last) so no object of the caller's can stand in for
    -- one of ours while the function runs with the owner's rights.
    EXECUTE format(
        $fn$
        CREATE FUNCTION advance_chain_head(p_coi text, p_head bytea) RETURNS integer
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = %I, pg_temp AS $body$
        DECLARE
            old_length integer;
            old_head bytea;
        BEGIN
            SELECT chain_length, chain_head INTO old_length, old_head
                FROM cases WHERE coi = p_coi FOR UPDATE;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no case %%', p_coi USING ERRCODE = 'foreign_key_violation';
            END IF;
            IF p_head IS NULL OR NOT EXISTS (
                SELECT 1 FROM custody_events
                 WHERE coi = p_coi AND seq = old_length + 1
                   AND prev_hash IS NOT DISTINCT FROM old_head AND hash = p_head
            ) THEN
                RAISE EXCEPTION 'the new chain head of case %% does not extend its chain', p_coi
                    USING ERRCODE = 'check_violation',
                          HINT = 'the head moves only to a stored event whose previous hash is the old head';
            END IF;
            UPDATE cases SET chain_length = old_length + 1, chain_head = p_head WHERE coi = p_coi;
            RETURN old_length + 1;
        END
        $body$
        $fn$,
        current_schema()
    );
END
$do$;

REVOKE ALL ON FUNCTION advance_chain_head(text, bytea) FROM PUBLIC;

-- Appending an event is what advances the head: the row must extend the chain, or the INSERT fails.
CREATE FUNCTION custody_events_advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM advance_chain_head(NEW.coi, NEW.hash);
    RETURN NULL;
END
$$;

CREATE TRIGGER custody_events_advance_head AFTER INSERT ON custody_events
    FOR EACH ROW EXECUTE FUNCTION custody_events_advance_head();

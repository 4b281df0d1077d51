-- Every object behind its site (issue 17): temperature profiles get an owner site and a four-eyes
-- approval before a new version is used; audit entries get the sites they concern, so QA reads the
-- trail of their own sites only.

-- -- temperature profiles ---------------------------------------------------------------------------

-- owner_site NULL: a network profile (the ones seeded by migrations), administered by administrators.
-- A version is proposed (pending) and used by new shipments only once a second person approved it with
-- an e-signature; `signature` keeps that signature's printed name, meaning, role and time.
ALTER TABLE temperature_profiles
    ADD COLUMN owner_site      text REFERENCES sites (code),
    ADD COLUMN status          text NOT NULL DEFAULT 'approved'
                               CHECK (status IN ('pending', 'approved', 'refused')),
    ADD COLUMN proposed_by     bigint REFERENCES users (id),
    ADD COLUMN decided_by      bigint REFERENCES users (id),
    ADD COLUMN decided_at      timestamptz,
    ADD COLUMN decision_reason text,
    ADD COLUMN signature       jsonb,
    -- A proposal's decision names who took it and when (rows from before 0011 have no proposer).
    ADD CONSTRAINT temperature_profiles_decided CHECK (status = 'pending' OR proposed_by IS NULL
                                                       OR (decided_by IS NOT NULL AND decided_at IS NOT NULL)),
    -- Four eyes, kept by the database too: nobody approves their own proposal (withdrawing it is fine).
    ADD CONSTRAINT temperature_profiles_second_person CHECK (status <> 'approved' OR proposed_by IS NULL
                                                             OR decided_by <> proposed_by);
-- The existing rows were approved above (seeded by migrations, or in use); a row added from now on is
-- pending unless it says otherwise, so a forgotten column cannot put an unreviewed version in force.
ALTER TABLE temperature_profiles ALTER COLUMN status SET DEFAULT 'pending';

-- Versions created through the API before this migration were never reviewed (the finding of issue 17:
-- any coordinator could post one, and the next shipment anywhere took it). They wait for an
-- administrator's approval now; the audit trail names who posted each.
UPDATE temperature_profiles p
   SET status = 'pending',
       proposed_by = (SELECT a.actor_id FROM audit_log a
                      WHERE a.entity = 'temperature_profile' AND a.entity_id = p.code || ' v' || p.version
                      ORDER BY a.id LIMIT 1)
 WHERE EXISTS (SELECT 1 FROM audit_log a
               WHERE a.entity = 'temperature_profile' AND a.entity_id = p.code || ' v' || p.version);

CREATE INDEX temperature_profiles_owner ON temperature_profiles (owner_site);

-- A version is a record: its content never changes, and its status moves once, from pending to a
-- decision. Shipments refer to it, so it is never deleted.
CREATE FUNCTION temperature_profile_decision_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'pending'
       OR (NEW.code, NEW.version, NEW.name, NEW.definition, NEW.created_at, NEW.owner_site, NEW.proposed_by)
          IS DISTINCT FROM
          (OLD.code, OLD.version, OLD.name, OLD.definition, OLD.created_at, OLD.owner_site, OLD.proposed_by)
    THEN
        RAISE EXCEPTION 'temperature profile % v%: only a pending version''s decision may be recorded',
            OLD.code, OLD.version USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER temperature_profiles_decision_only BEFORE UPDATE ON temperature_profiles
    FOR EACH ROW EXECUTE FUNCTION temperature_profile_decision_only();
CREATE TRIGGER temperature_profiles_no_delete BEFORE DELETE ON temperature_profiles
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER temperature_profiles_no_truncate BEFORE TRUNCATE ON temperature_profiles
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- A shipment is planned with an approved version only, whoever writes the row.
CREATE FUNCTION shipment_profile_approved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM temperature_profiles
                   WHERE code = NEW.profile_code AND version = NEW.profile_version AND status = 'approved')
    THEN
        RAISE EXCEPTION 'temperature profile % v% is not approved', NEW.profile_code, NEW.profile_version
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER shipments_profile_approved BEFORE INSERT OR UPDATE OF profile_code, profile_version
    ON shipments FOR EACH ROW EXECUTE FUNCTION shipment_profile_approved();

-- -- audit trail sites -------------------------------------------------------------------------------

-- The sites an entry concerns, derived from what it is about. Used for the rows already written and for
-- any new row whose writer does not name its sites; an entity not listed here concerns no site, which
-- makes its entries readable by administrators only (the safe answer for a kind of entry added later).
CREATE FUNCTION audit_entry_sites(p_entity text, p_entity_id text, p_old jsonb, p_new jsonb)
RETURNS text[] LANGUAGE plpgsql STABLE AS $$
DECLARE
    found text[] := '{}';
BEGIN
    CASE p_entity
    WHEN 'user' THEN
        -- The person's sites now, those the change took away or gave, and the site an entry names (a
        -- signature refused there). An unknown user name (a sign-in lockout) concerns no site.
        found := ARRAY(SELECT us.site_code FROM user_sites us JOIN users u ON u.id = us.user_id
                       WHERE u.username = p_entity_id)
                 || ARRAY[p_new ->> 'site'];
        IF jsonb_typeof(p_old -> 'sites') = 'array' THEN
            found := found || ARRAY(SELECT jsonb_array_elements_text(p_old -> 'sites'));
        END IF;
        IF jsonb_typeof(p_new -> 'sites') = 'array' THEN
            found := found || ARRAY(SELECT jsonb_array_elements_text(p_new -> 'sites'));
        END IF;
    WHEN 'site' THEN
        found := ARRAY[p_entity_id];
    WHEN 'logger' THEN
        -- Its owner now, the owners a change moved it between, and the site a loan (0009) names.
        found := ARRAY(SELECT owner_site FROM loggers WHERE id = p_entity_id)
                 || ARRAY[p_old ->> 'owner_site', p_new ->> 'owner_site', p_old ->> 'site', p_new ->> 'site'];
    WHEN 'alert_subscription' THEN
        found := ARRAY(SELECT site FROM alert_subscriptions
                       WHERE p_entity_id ~ '^[0-9]{1,18}$' AND id = p_entity_id::bigint)
                 || ARRAY[p_new ->> 'site'];
    WHEN 'case' THEN
        found := ARRAY(SELECT treatment_site FROM cases WHERE coi = p_entity_id);
    WHEN 'shipment' THEN
        found := ARRAY(SELECT unnest(ARRAY[from_site, to_site]) FROM shipments WHERE id = p_entity_id);
    WHEN 'custody_event' THEN
        -- Every site the event's case touches, as the case's own visibility (backend/db/repo/cases.py).
        found := ARRAY(
            SELECT x.site FROM custody_events e JOIN cases c ON c.coi = e.coi
            CROSS JOIN LATERAL (SELECT c.treatment_site
                                UNION SELECT from_site FROM shipments WHERE coi = e.coi
                                UNION SELECT to_site FROM shipments WHERE coi = e.coi
                                UNION SELECT site FROM units WHERE coi = e.coi) AS x (site)
            WHERE p_entity_id ~ '^[0-9]{1,18}$' AND e.id = p_entity_id::bigint);
    WHEN 'temperature_profile' THEN
        -- entity_id is "<code> v<version>"; a network profile has no owner and concerns no site.
        found := ARRAY(SELECT DISTINCT owner_site FROM temperature_profiles
                       WHERE code = split_part(p_entity_id, ' ', 1));
    ELSE
        found := '{}';
    END CASE;
    RETURN ARRAY(SELECT DISTINCT s FROM unnest(found) AS s WHERE s IS NOT NULL ORDER BY s);
END $$;

ALTER TABLE audit_log ADD COLUMN sites text[];

-- The trail is append-only (0001); this one backfill is the migration's own, run as the table's owner in
-- this transaction, and the trigger is back before it commits.
ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
UPDATE audit_log SET sites = audit_entry_sites(entity, entity_id, old_value, new_value);
ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;

ALTER TABLE audit_log ALTER COLUMN sites SET NOT NULL;
CREATE INDEX audit_log_sites ON audit_log USING gin (sites);

-- A writer that names no sites (NULL) gets the derived ones; one that names them (even none) is kept.
CREATE FUNCTION audit_log_sites() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.sites IS NULL THEN
        NEW.sites := audit_entry_sites(NEW.entity, NEW.entity_id, NEW.old_value, NEW.new_value);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_log_sites BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_sites();

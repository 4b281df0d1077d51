-- Organisations (issue 25): hospitals, manufacturers, courier companies and clients own sites and users.
-- Hospital and manufacturer users keep seeing by the sites they are bound to (their sites belong to their
-- organisation). A courier company's users see only the legs assigned to their organisation, and a
-- client's users only the cases naming their organisation as client: for them the relation, never a site
-- binding, opens a record. Every column below is nullable so that rows from before stay as they were.
CREATE TABLE organisations (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z0-9][A-Z0-9_-]{1,31}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('hospital', 'manufacturer', 'courier', 'client')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE sites ADD COLUMN organisation text REFERENCES organisations (code);
ALTER TABLE users ADD COLUMN organisation text REFERENCES organisations (code);
CREATE INDEX users_organisation ON users (organisation) WHERE organisation IS NOT NULL;

-- A leg may be carried by a courier company; only a courier organisation can be named (trigger below).
ALTER TABLE shipments ADD COLUMN courier_organisation text REFERENCES organisations (code);
CREATE INDEX shipments_courier_organisation ON shipments (courier_organisation)
    WHERE courier_organisation IS NOT NULL;

-- A case made at a contract manufacturer may name the client it is made for.
ALTER TABLE cases ADD COLUMN client_organisation text REFERENCES organisations (code);
CREATE INDEX cases_client_organisation ON cases (client_organisation) WHERE client_organisation IS NOT NULL;

-- The kind of the organisation named is checked by the database too, so that a row written around the
-- service (a script, a repair) cannot hand a leg to a client or a case to a courier company.
CREATE FUNCTION organisation_of_kind(org text, wanted text) RETURNS boolean
    LANGUAGE sql STABLE AS $$ SELECT org IS NULL OR EXISTS (SELECT 1 FROM organisations WHERE code = org AND kind = wanted) $$;

CREATE FUNCTION check_courier_organisation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT organisation_of_kind(NEW.courier_organisation, 'courier') THEN
        RAISE EXCEPTION 'courier_organisation % is not a courier company', NEW.courier_organisation
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION check_client_organisation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT organisation_of_kind(NEW.client_organisation, 'client') THEN
        RAISE EXCEPTION 'client_organisation % is not a client', NEW.client_organisation
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER shipments_courier_kind BEFORE INSERT OR UPDATE OF courier_organisation ON shipments
    FOR EACH ROW WHEN (NEW.courier_organisation IS NOT NULL) EXECUTE FUNCTION check_courier_organisation();
CREATE TRIGGER cases_client_kind BEFORE INSERT OR UPDATE OF client_organisation ON cases
    FOR EACH ROW WHEN (NEW.client_organisation IS NOT NULL) EXECUTE FUNCTION check_client_organisation();

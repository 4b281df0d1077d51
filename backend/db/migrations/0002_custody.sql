-- Chain of identity and custody: cases, units, shipments, custody events with a hash chain, electronic
-- signatures, hand-overs, alerts and the live event outbox. Also the logger registry and readings that
-- shipments refer to.

CREATE TABLE loggers (
    id               text PRIMARY KEY CHECK (id ~ '^LGR-[A-Z0-9]{1,20}$'),
    model            text NOT NULL DEFAULT '',
    firmware         text NOT NULL DEFAULT '',
    calibration_due  date,
    owner_site       text REFERENCES sites (code),
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Temperature profiles are versioned: a shipment keeps the version it was created with.
CREATE TABLE temperature_profiles (
    code        text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_-]{1,40}$'),
    version     integer NOT NULL CHECK (version >= 1),
    name        text NOT NULL,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, version)
);

INSERT INTO temperature_profiles (code, version, name, definition) VALUES
 ('fresh', 1, 'Fresh starting material 2 to 8 °C',
  '{"low_c": 2.0, "high_c": 8.0, "critical_low_c": 0.0, "critical_high_c": 15.0,
    "cumulative_minutes": 30, "mkt_hours": 24}'),
 ('crt', 1, 'Controlled room temperature 15 to 25 °C',
  '{"low_c": 15.0, "high_c": 25.0, "cumulative_minutes": 60, "mkt_hours": 720}'),
 ('cryo', 1, 'Cryopreserved, LN2 dry vapour, at or below -150 °C',
  '{"low_c": null, "high_c": -150.0, "critical_high_c": -150.0, "consecutive_minutes": 5,
    "predictive": true}');

CREATE SEQUENCE coi_sequence;
CREATE SEQUENCE shipment_sequence;

CREATE TABLE cases (
    coi             text PRIMARY KEY CHECK (coi ~ '^CH[A-Z0-9]{13}$'),
    treatment_site  text NOT NULL REFERENCES sites (code),
    therapy         text NOT NULL CHECK (length(therapy) BETWEEN 1 AND 200),
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'completed', 'cancelled')),
    -- Minimal patient fields the hospital may need; never a name. Visible only to the treatment site.
    patient_ref     text CHECK (length(patient_ref) <= 64),
    birth_year      integer CHECK (birth_year BETWEEN 1900 AND 2100),
    created_by      bigint NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Head of the custody chain; the row lock on it serialises appends to one case.
    chain_length    integer NOT NULL DEFAULT 0,
    chain_head      bytea
);

CREATE TABLE units (
    id                text PRIMARY KEY,
    coi               text NOT NULL REFERENCES cases (coi),
    kind              text NOT NULL CHECK (kind IN ('APH', 'PRC', 'SMP')),
    din               text,
    product           text NOT NULL,
    expires_at        timestamptz,
    status            text NOT NULL,
    site              text REFERENCES sites (code),
    holder_id         bigint REFERENCES users (id),
    shipment_id       text,
    storage_location  text,
    released          boolean NOT NULL DEFAULT false,
    quarantined       boolean NOT NULL DEFAULT false,
    thawed_at         timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (id LIKE coi || '-%')
);
CREATE INDEX units_coi ON units (coi);

CREATE TABLE shipments (
    id                 text PRIMARY KEY CHECK (id ~ '^SHP-[0-9]{4}-[0-9]{6}$'),
    coi                text NOT NULL REFERENCES cases (coi),
    from_site          text NOT NULL REFERENCES sites (code),
    to_site            text NOT NULL REFERENCES sites (code),
    container_id       text NOT NULL,
    logger_id          text REFERENCES loggers (id),
    profile_code       text NOT NULL,
    profile_version    integer NOT NULL,
    profile            jsonb NOT NULL,
    planned_departure  timestamptz NOT NULL,
    planned_arrival    timestamptz NOT NULL,
    seals              text[] NOT NULL DEFAULT '{}',
    waybill            text,
    status             text NOT NULL DEFAULT 'planned',
    holder_id          bigint REFERENCES users (id),
    departed_at        timestamptz,
    arrived_at         timestamptz,
    received_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (profile_code, profile_version) REFERENCES temperature_profiles (code, version),
    CHECK (from_site <> to_site),
    CHECK (planned_arrival > planned_departure)
);
CREATE INDEX shipments_coi ON shipments (coi);
CREATE INDEX shipments_logger ON shipments (logger_id, departed_at);

CREATE TABLE shipment_units (
    shipment_id  text NOT NULL REFERENCES shipments (id),
    unit_id      text NOT NULL REFERENCES units (id),
    packed       boolean NOT NULL DEFAULT false,
    receipt_scanned boolean NOT NULL DEFAULT false,
    PRIMARY KEY (shipment_id, unit_id)
);
ALTER TABLE units ADD FOREIGN KEY (shipment_id) REFERENCES shipments (id);

CREATE TABLE readings (
    logger_id    text NOT NULL REFERENCES loggers (id),
    ts           timestamptz NOT NULL,
    temp_c       real NOT NULL,
    battery_pct  smallint,
    lid_open     boolean,
    shipment_id  text REFERENCES shipments (id),
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (logger_id, ts)
);
CREATE INDEX readings_shipment ON readings (shipment_id, ts) WHERE shipment_id IS NOT NULL;

-- The custody record. Append-only: a trigger refuses UPDATE and DELETE; each row carries the SHA-256 of
-- its canonical form chained to the previous event of the same case.
CREATE TABLE custody_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    coi             text NOT NULL REFERENCES cases (coi),
    seq             integer NOT NULL CHECK (seq >= 1),
    action          text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('accepted', 'refused')),
    refusal         text,
    detail          text NOT NULL,
    shipment_id     text,
    unit_ids        text[] NOT NULL DEFAULT '{}',
    actor_id        bigint NOT NULL REFERENCES users (id),
    actor_name      text NOT NULL,
    site            text NOT NULL,
    counterpart_id  bigint REFERENCES users (id),
    codes           text[] NOT NULL DEFAULT '{}',
    device_time     timestamptz,
    server_time     timestamptz NOT NULL,
    gps             jsonb,
    data            jsonb NOT NULL DEFAULT '{}',
    corrects        bigint REFERENCES custody_events (id),
    prev_hash       bytea,
    hash            bytea NOT NULL,
    UNIQUE (coi, seq)
);
CREATE INDEX custody_events_shipment ON custody_events (shipment_id) WHERE shipment_id IS NOT NULL;

CREATE TRIGGER custody_events_append_only BEFORE UPDATE OR DELETE ON custody_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER custody_events_no_truncate BEFORE TRUNCATE ON custody_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Electronic signatures (21 CFR Part 11 §11.50/§11.70): printed name, time and meaning, linked for ever
-- to the event they sign; their content is part of the event's hash.
CREATE TABLE signatures (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      bigint NOT NULL REFERENCES custody_events (id),
    signer_id     bigint NOT NULL REFERENCES users (id),
    username      text NOT NULL,
    printed_name  text NOT NULL,
    meaning       text NOT NULL,
    role          text NOT NULL,
    signed_at     timestamptz NOT NULL,
    UNIQUE (event_id, signer_id)
);
CREATE TRIGGER signatures_append_only BEFORE UPDATE OR DELETE ON signatures
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- A custody transfer in progress: the giver handed over, the receiver has yet to confirm.
CREATE TABLE handovers (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id   text NOT NULL REFERENCES shipments (id),
    event_id      bigint NOT NULL REFERENCES custody_events (id),
    giver_id      bigint NOT NULL REFERENCES users (id),
    receiver_id   bigint NOT NULL REFERENCES users (id),
    site          text NOT NULL,
    created_at    timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    confirmed_at  timestamptz,
    confirm_event_id bigint REFERENCES custody_events (id)
);
CREATE UNIQUE INDEX handovers_one_open ON handovers (shipment_id) WHERE confirmed_at IS NULL;

-- The first answer to each idempotency key, returned verbatim for any repeat.
CREATE TABLE scan_requests (
    idempotency_key  text PRIMARY KEY,
    actor_id         bigint NOT NULL REFERENCES users (id),
    status_code      smallint NOT NULL,
    response         jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Refused scans that name no known case (unknown codes) are kept here, also append-only.
CREATE TABLE orphan_refusals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id    bigint NOT NULL REFERENCES users (id),
    site        text NOT NULL,
    action      text NOT NULL,
    codes       text[] NOT NULL,
    refusal     text NOT NULL,
    detail      text NOT NULL,
    server_time timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TRIGGER orphan_refusals_append_only BEFORE UPDATE OR DELETE ON orphan_refusals
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE alerts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    status           text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'acknowledged', 'resolved', 'closed')),
    title            text NOT NULL,
    detail           text NOT NULL,
    coi              text REFERENCES cases (coi),
    shipment_id      text REFERENCES shipments (id),
    unit_id          text REFERENCES units (id),
    logger_id        text REFERENCES loggers (id),
    sites            text[] NOT NULL DEFAULT '{}',
    -- One open alert per ongoing condition: the same key never opens a second alert while one is open.
    condition_key    text NOT NULL,
    started_at       timestamptz NOT NULL,
    ended_at         timestamptz,
    peak_value       double precision,
    rule             jsonb NOT NULL DEFAULT '{}',
    event_id         bigint REFERENCES custody_events (id),
    acknowledged_by  bigint REFERENCES users (id),
    acknowledged_at  timestamptz,
    ack_comment      text,
    closed_by        bigint REFERENCES users (id),
    closed_at        timestamptz,
    close_reason     text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alerts_one_per_condition ON alerts (condition_key) WHERE status IN ('open', 'acknowledged');
CREATE INDEX alerts_status ON alerts (status, severity);

-- Outbox for live delivery: written in the same transaction as the change it announces. NOTIFY only
-- wakes listeners; they read this table from their Last-Event-ID, so nothing is lost across restarts.
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,
    sites       text[] NOT NULL,
    coi         text,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('celltrail_outbox', NEW.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_notify();

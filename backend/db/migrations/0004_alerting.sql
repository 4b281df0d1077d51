-- Alerting: the excursion engine's state per shipment leg, the readings it still has to fold, more
-- profiles, alert columns for episodes and delivery, site subscriptions (webhook, e-mail), the delivery
-- queue and its log.

-- Product-specific cryogenic limits beside the seeded -150 °C profile.
INSERT INTO temperature_profiles (code, version, name, definition) VALUES
 ('cryo-130', 1, 'Cryopreserved, LN2 dry vapour, at or below -130 °C',
  '{"low_c": null, "high_c": -130.0, "critical_high_c": -130.0, "consecutive_minutes": 5,
    "predictive": true}'),
 ('cryo-120', 1, 'Cryopreserved, LN2 dry vapour, at or below -120 °C',
  '{"low_c": null, "high_c": -120.0, "critical_high_c": -120.0, "consecutive_minutes": 5,
    "predictive": true}');

-- The engine folds a leg's readings in time order. Its state after the last reading folded is kept here,
-- so the next batch costs only its own readings; the row lock serialises evaluations of one leg across
-- backend replicas.
CREATE TABLE excursion_state (
    shipment_id   text PRIMARY KEY REFERENCES shipments (id),
    through_ts    timestamptz,
    readings      integer NOT NULL DEFAULT 0,
    state         bytea,
    evaluated_at  timestamptz,
    full_runs     integer NOT NULL DEFAULT 0,
    runs          integer NOT NULL DEFAULT 0
);

-- Readings not yet folded, marked by the same statement that stores them (so a crash between the ingest
-- commit and the evaluation loses nothing: the periodic sweep finds the marks). `from_ts` is the earliest
-- new reading: one at or before the leg's `through_ts` is a backlog, and the leg is recomputed.
CREATE TABLE excursion_dirty (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id  text NOT NULL,
    logger_id    text NOT NULL,
    from_ts      timestamptz NOT NULL,
    marked_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX excursion_dirty_shipment ON excursion_dirty (shipment_id);
CREATE INDEX excursion_dirty_logger ON excursion_dirty (logger_id);

CREATE FUNCTION mark_excursion_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO excursion_dirty (shipment_id, logger_id, from_ts)
    SELECT shipment_id, logger_id, min(ts) FROM new_readings
    WHERE shipment_id IS NOT NULL GROUP BY shipment_id, logger_id;
    RETURN NULL;
END $$;
CREATE TRIGGER readings_mark_dirty AFTER INSERT ON readings
    REFERENCING NEW TABLE AS new_readings FOR EACH STATEMENT EXECUTE FUNCTION mark_excursion_dirty();

-- An alert is one episode: when its rule fired, when it escalated, time beyond the limit, and what the
-- subscribers were last told (severity and status), so the dispatcher sends each change exactly once into
-- the delivery queue, whoever raised the alert.
ALTER TABLE alerts
    ADD COLUMN fired_at           timestamptz,
    ADD COLUMN escalated_at       timestamptz,
    ADD COLUMN minutes_beyond     double precision,
    ADD COLUMN reminded_at        timestamptz,
    ADD COLUMN notified_severity  text,
    ADD COLUMN notified_status    text,
    -- Raised on partial data, then not borne out once a backlog completed the readings: closed, kept.
    ADD COLUMN withdrawn_at       timestamptz;
UPDATE alerts SET notified_severity = severity, notified_status = status;
CREATE INDEX alerts_undispatched ON alerts (id)
    WHERE notified_status IS DISTINCT FROM status OR notified_severity IS DISTINCT FROM severity;
CREATE INDEX alerts_shipment_kind ON alerts (shipment_id, kind) WHERE shipment_id IS NOT NULL;
CREATE INDEX alerts_unacknowledged_critical ON alerts (id) WHERE status = 'open' AND severity = 'critical';

CREATE TABLE alert_subscriptions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site          text NOT NULL REFERENCES sites (code),
    channel       text NOT NULL CHECK (channel IN ('webhook', 'email')),
    target        text NOT NULL CHECK (length(target) BETWEEN 3 AND 2000),
    -- HMAC-SHA256 key of a webhook; kept readable because every delivery is signed with it.
    secret        text,
    min_severity  text NOT NULL DEFAULT 'critical' CHECK (min_severity IN ('info', 'warning', 'critical')),
    description   text NOT NULL DEFAULT '',
    active        boolean NOT NULL DEFAULT true,
    created_by    bigint NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    deactivated_at timestamptz,
    CHECK (channel <> 'webhook' OR secret IS NOT NULL)
);
CREATE INDEX alert_subscriptions_site ON alert_subscriptions (site) WHERE active;

-- At least once: a row per (subscription, alert change), sent by the periodic loop, retried with
-- exponential backoff; `next_attempt_at` doubles as the lease of a sender that claimed the row.
CREATE TABLE alert_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id  bigint NOT NULL REFERENCES alert_subscriptions (id),
    alert_id         bigint NOT NULL REFERENCES alerts (id),
    event            text NOT NULL,
    subject          text NOT NULL,
    body             bytea NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_subscription ON alert_deliveries (subscription_id, id);

CREATE TABLE delivery_attempts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   bigint NOT NULL REFERENCES alert_deliveries (id),
    attempt       integer NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    ok            boolean NOT NULL,
    status_code   integer,
    error         text,
    duration_ms   double precision NOT NULL
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);

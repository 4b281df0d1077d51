-- Orchestration (issue 24): products and their lead times, treatment orders, a manufacturing site's
-- capacity and blackout days, a collection site's apheresis slots, bookings and the planned milestones
-- of each booking. Actual dates are never stored here: they are read from the custody record.

CREATE TABLE planning_products (
    code                     text PRIMARY KEY CHECK (code ~ '^[a-z0-9][a-z0-9_-]{1,40}$'),
    name                     text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Lead times in hours between consecutive milestones, and the manufacturing run in days.
    ship_after_collection_h  integer NOT NULL CHECK (ship_after_collection_h BETWEEN 0 AND 720),
    transit_in_h             integer NOT NULL CHECK (transit_in_h BETWEEN 0 AND 720),
    start_after_arrival_h    integer NOT NULL CHECK (start_after_arrival_h BETWEEN 0 AND 720),
    manufacturing_days       integer NOT NULL CHECK (manufacturing_days BETWEEN 1 AND 120),
    ship_after_release_h     integer NOT NULL CHECK (ship_after_release_h BETWEEN 0 AND 2160),
    transit_out_h            integer NOT NULL CHECK (transit_out_h BETWEEN 0 AND 720),
    infusion_after_receipt_h integer NOT NULL CHECK (infusion_after_receipt_h BETWEEN 0 AND 2160),
    -- How late a milestone may be before the next one counts as at risk.
    slack_h                  integer NOT NULL DEFAULT 12 CHECK (slack_h BETWEEN 0 AND 720),
    created_at               timestamptz NOT NULL DEFAULT now()
);

INSERT INTO planning_products VALUES
    ('car-t', 'Autologous CAR-T cells', 2, 6, 16, 14, 48, 24, 72, 12, now());

CREATE TABLE treatment_orders (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    coi                 text NOT NULL REFERENCES cases (coi),
    product             text NOT NULL REFERENCES planning_products (code),
    ordering_site       text NOT NULL REFERENCES sites (code),
    collection_site     text NOT NULL REFERENCES sites (code),
    manufacturing_site  text NOT NULL REFERENCES sites (code),
    mdt_reference       text NOT NULL CHECK (length(mdt_reference) BETWEEN 1 AND 200),
    mdt_date            date NOT NULL,
    physician           text NOT NULL CHECK (length(physician) BETWEEN 1 AND 200),
    status              text NOT NULL DEFAULT 'requested'
                        CHECK (status IN ('requested', 'accepted', 'declined', 'withdrawn')),
    ordered_by          bigint NOT NULL REFERENCES users (id),
    ordered_at          timestamptz NOT NULL,
    decided_by          bigint REFERENCES users (id),
    decided_at          timestamptz,
    decision_reason     text,
    -- The signed custody event that records the manufacturing site's decision.
    decision_event_id   bigint REFERENCES custody_events (id)
);
-- One live order per case: a declined or withdrawn order may be followed by a new one.
CREATE UNIQUE INDEX treatment_orders_one_live ON treatment_orders (coi) WHERE status IN ('requested', 'accepted');
CREATE INDEX treatment_orders_sites ON treatment_orders (manufacturing_site, status);

-- Runs that may start per day for one product at one manufacturing site, and the cleanroom suites they
-- run in. A suite holds one run at a time for the product's manufacturing days.
CREATE TABLE manufacturing_capacity (
    site          text NOT NULL REFERENCES sites (code),
    product       text NOT NULL REFERENCES planning_products (code),
    runs_per_day  integer NOT NULL CHECK (runs_per_day BETWEEN 0 AND 100),
    suites        text[] NOT NULL CHECK (cardinality(suites) BETWEEN 1 AND 50),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, product)
);

-- Days on which no run starts at a site (maintenance, holidays).
CREATE TABLE manufacturing_blackouts (
    site    text NOT NULL REFERENCES sites (code),
    day     date NOT NULL,
    reason  text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    PRIMARY KEY (site, day)
);

CREATE TABLE collection_slots (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site       text NOT NULL REFERENCES sites (code),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    CHECK (ends_at > starts_at),
    UNIQUE (site, starts_at)
);

CREATE TABLE bookings (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id            bigint NOT NULL REFERENCES treatment_orders (id),
    coi                 text NOT NULL REFERENCES cases (coi),
    slot_id             bigint NOT NULL REFERENCES collection_slots (id),
    manufacturing_site  text NOT NULL REFERENCES sites (code),
    product             text NOT NULL REFERENCES planning_products (code),
    suite               text NOT NULL,
    -- The run occupies its suite on [manufacturing_start, manufacturing_end), days at the site.
    manufacturing_start date NOT NULL,
    manufacturing_end   date NOT NULL,
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'rescheduled', 'cancelled')),
    -- Set when the site's capacity was lowered under the booking; the reason says what no longer fits.
    flagged             boolean NOT NULL DEFAULT false,
    flag_reason         text,
    booked_by           bigint NOT NULL REFERENCES users (id),
    booked_at           timestamptz NOT NULL,
    ended_by            bigint REFERENCES users (id),
    ended_at            timestamptz,
    end_reason          text,
    CHECK (manufacturing_end > manufacturing_start)
);
-- Second line of defence behind the row locks of the booking service: a slot, a case and a suite's
-- start day are never held twice.
CREATE UNIQUE INDEX bookings_one_per_slot ON bookings (slot_id) WHERE status = 'active';
CREATE UNIQUE INDEX bookings_one_per_case ON bookings (coi) WHERE status = 'active';
CREATE UNIQUE INDEX bookings_one_start_per_suite ON bookings (manufacturing_site, suite, manufacturing_start)
    WHERE status = 'active';
CREATE INDEX bookings_site_days ON bookings (manufacturing_site, manufacturing_start) WHERE status = 'active';

CREATE TABLE plan_milestones (
    booking_id  bigint NOT NULL REFERENCES bookings (id),
    coi         text NOT NULL REFERENCES cases (coi),
    milestone   text NOT NULL,
    position    smallint NOT NULL,
    planned_at  timestamptz NOT NULL,
    PRIMARY KEY (booking_id, milestone)
);
CREATE INDEX plan_milestones_coi ON plan_milestones (coi);

-- What a partner's captured EPCIS event said of the custody step it recorded (issue 22): the eventID it
-- gave (NULL when it gave none), and its business step and disposition as sent, a URI of the partner's
-- own included. The step is exported and queried with these, so what a partner captured comes back as
-- it was said.
CREATE TABLE epcis_captured_events (
    custody_event_id bigint PRIMARY KEY REFERENCES custody_events (id),
    capture_id       text NOT NULL REFERENCES epcis_captures (id),
    event_id         text CHECK (length(event_id) <= 2000),
    biz_step         text NOT NULL CHECK (length(biz_step) <= 2000),
    disposition      text CHECK (length(disposition) <= 2000)
);

CREATE INDEX epcis_captured_events_capture ON epcis_captured_events (capture_id);

-- A product's GTIN (issue 22): a unit of a product that has one is identified in EPCIS events as an SGTIN
-- (the GTIN with the unit's serial) instead of Celltrail's private URN. One GTIN names one product.
CREATE TABLE epcis_products (
    product    text PRIMARY KEY CHECK (length(product) BETWEEN 1 AND 200),
    gtin       text NOT NULL UNIQUE CHECK (gtin ~ '^[0-9]{14}$'),
    set_by     bigint NOT NULL REFERENCES users (id),
    set_at     timestamptz NOT NULL DEFAULT now()
);

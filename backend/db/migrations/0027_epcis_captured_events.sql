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

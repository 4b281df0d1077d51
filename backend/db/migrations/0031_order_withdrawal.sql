-- A treatment order withdrawn by its treatment site: who, when and why, beside the manufacturing site's
-- decision, which it does not replace.
ALTER TABLE treatment_orders
    ADD COLUMN withdrawn_by      bigint REFERENCES users (id),
    ADD COLUMN withdrawn_at      timestamptz,
    ADD COLUMN withdrawal_reason text;

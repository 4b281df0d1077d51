-- An idempotency key names one request (issue 21): a resend of the same request replays the first
-- answer, the same key with a different request (a pickup's key sent again with a hand-over) is refused.
-- The digest covers everything the request says except the key and the signers' passwords, which are
-- never stored, not even hashed. Rows remembered before this column existed have none and replay as
-- before.
ALTER TABLE scan_requests ADD COLUMN request_digest bytea;

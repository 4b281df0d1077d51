-- Service credentials: API keys for service accounts (the firmware bridge, integrations). A key stands
-- in for a sign-in: a request with `Authorization: Bearer ctk_...` acts as the key's account without
-- going through the sign-in form, so the sign-in throttle (per username and per client address) never
-- touches it. Only the key's SHA-256 digest is kept; the key itself is shown once, when it is created.
-- Keys are revoked, never deleted, so the list stays a history of who could act as the account.
CREATE TABLE api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- The key's first characters (the `ctk_` prefix and a few more), to recognise it in a list.
    hint          text NOT NULL CHECK (length(hint) <= 16),
    key_hash      bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    bigint REFERENCES users (id),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    revoked_by    bigint REFERENCES users (id)
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TRIGGER api_keys_no_delete BEFORE DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER api_keys_no_truncate BEFORE TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Sites, users, roles, tokens and the administrative audit trail.

CREATE TABLE sites (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z0-9][A-Z0-9_-]{1,31}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('hospital', 'apheresis', 'manufacturing', 'courier_depot')),
    time_zone   text NOT NULL,
    gln         text CHECK (gln ~ '^[0-9]{13}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username            text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
    full_name           text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 200),
    password_hash       text NOT NULL,
    active              boolean NOT NULL DEFAULT true,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_roles (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    text NOT NULL CHECK (role IN ('courier', 'pharmacist', 'coordinator', 'manufacturing', 'qa',
                                          'admin', 'bridge')),
    PRIMARY KEY (user_id, role)
);

CREATE TABLE user_sites (
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    site_code text NOT NULL REFERENCES sites (code),
    PRIMARY KEY (user_id, site_code)
);

-- Bearer tokens are stored as SHA-256 digests: a database dump does not hand out live sessions.
CREATE TABLE auth_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id) WHERE revoked_at IS NULL;

-- Who changed what, when, old and new values and why (21 CFR Part 11 audit trail). Append-only.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id    bigint REFERENCES users (id),
    actor_name  text NOT NULL,
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_id   text NOT NULL,
    old_value   jsonb,
    new_value   jsonb,
    reason      text
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, at);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: the record is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Patient identity kept apart (issue 25): name, date of birth and hospital number of a case's patient,
-- one row per case, never in clear. The application encrypts them (AES-GCM, backend/services/
-- patient_identity.py) with a key from a file the database never holds; `key_id` names that key so old
-- rows keep decrypting after a rotation, and the case's COI is bound into each ciphertext as associated
-- data, so a ciphertext copied onto another case's row does not decrypt there.
CREATE TABLE patient_identities (
    coi text PRIMARY KEY REFERENCES cases (coi),
    key_id text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    nonce bytea NOT NULL CHECK (length(nonce) = 12),
    -- The JSON document of the fields, encrypted, with GCM's 16-byte tag.
    ciphertext bytea NOT NULL CHECK (length(ciphertext) BETWEEN 17 AND 4096),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by bigint REFERENCES users (id)
);

-- The re-encryption under the newest key walks the rows still under an older one.
CREATE INDEX patient_identities_key_id ON patient_identities (key_id);

-- Which identity fields the site's wristband prints (issue 19): a subset of name, dob, hospital-number
-- (the labels package's PatientField values); none unless the site says so.
ALTER TABLE sites
    ADD COLUMN wristband_fields text[] NOT NULL DEFAULT '{}'
        CHECK (wristband_fields <@ ARRAY['name', 'dob', 'hospital-number']::text[]);

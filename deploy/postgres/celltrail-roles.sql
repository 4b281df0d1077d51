-- Celltrail's database roles (least privilege, issue 18). Run once, as a superuser or a role with
-- CREATEROLE and CREATEDB, before the first `celltrail migrate`:
--
--   celltrail_owner  owns the database and its schema and runs the migrations
--                    (CELLTRAIL_MIGRATION_DATABASE_URL); nothing else.
--   celltrail_app    what the backend runs as (CELLTRAIL_DATABASE_URL). Owns nothing: `celltrail migrate`
--                    grants it SELECT and INSERT on the record (custody events, signatures, audit trail,
--                    readings, recorded refusals), UPDATE and DELETE only where the backend needs them,
--                    and moves chain heads only through advance_chain_head (backend/db/migrate.py).
--
-- The passwords come from the environment, read by psql itself (never on a command line):
--   CELLTRAIL_DB_OWNER_PASSWORD=... CELLTRAIL_DB_APP_PASSWORD=... \
--     psql -v ON_ERROR_STOP=1 -h HOST -U ADMIN -d postgres -f deploy/postgres/celltrail-roles.sql
-- compose.yaml runs this file from /docker-entrypoint-initdb.d when the database volume is new.
-- Running it again is harmless: it sets the passwords again and creates only what is missing.
\getenv owner_password CELLTRAIL_DB_OWNER_PASSWORD
\getenv app_password CELLTRAIL_DB_APP_PASSWORD
SELECT length(:'owner_password') >= 12 AND length(:'app_password') >= 12 AS passwords_set \gset
\if :passwords_set
\else
    \warn 'CELLTRAIL_DB_OWNER_PASSWORD and CELLTRAIL_DB_APP_PASSWORD must be set (12 characters or more)'
    SELECT 1 / 0 AS missing_passwords;
\endif

SELECT 'CREATE ROLE celltrail_owner' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'celltrail_owner')
\gexec
SELECT 'CREATE ROLE celltrail_app' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'celltrail_app')
\gexec
ALTER ROLE celltrail_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'owner_password';
ALTER ROLE celltrail_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'app_password';

SELECT 'CREATE DATABASE celltrail OWNER celltrail_owner'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'celltrail')
\gexec
ALTER DATABASE celltrail OWNER TO celltrail_owner;

\connect celltrail
-- PostgreSQL 15 and later: the database owner owns `public`; before 15 it needs the grant, and PUBLIC
-- must lose its CREATE there.
GRANT USAGE, CREATE ON SCHEMA public TO celltrail_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

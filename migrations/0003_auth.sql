-- Authentication for the REST API: users with bcrypt passwords, long-lived
-- API keys (only a SHA-256 of each key is kept), and the key that signs the
-- webserver's JWTs when the configuration gives none.
CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE,
    password_hash  text NOT NULL,                  -- bcrypt
    role           text NOT NULL CHECK (role IN ('viewer', 'op', 'admin')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz
);

CREATE TABLE api_keys (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    -- The key's first, non-secret part ("pfk_" + 12 hex digits): found by
    -- lookup, shown in listings so a person can tell keys apart.
    prefix        text NOT NULL UNIQUE,
    key_hash      bytea NOT NULL,                  -- SHA-256 of the whole key
    role          text NOT NULL CHECK (role IN ('viewer', 'op', 'admin')),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

-- Generated secrets shared by every webserver (name 'jwt_signing_key'): the
-- first to start inserts one, the others read it (INSERT … ON CONFLICT DO
-- NOTHING, then SELECT), so concurrent first starts agree on one key.
CREATE TABLE auth_secrets (
    name        text PRIMARY KEY,
    value       bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

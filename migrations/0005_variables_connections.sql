-- Variables and connections (issue #15). Secret values are stored as
-- ciphertext written by internal/secrets ("pf1:<key id>:<base64>", AES-256-GCM
-- bound to the row's name), never in clear: is_encrypted says which form a
-- row's value is in, so a missing or wrong key is an error naming the row,
-- never a silent fallback to reading ciphertext as text.
CREATE TABLE variables (
    key          text PRIMARY KEY,
    val          text NOT NULL,
    description  text NOT NULL DEFAULT '',
    is_secret    boolean NOT NULL DEFAULT false,
    is_encrypted boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- password and extra are encrypted (is_encrypted); the other fields are not
-- secret, so they stay queryable.
CREATE TABLE connections (
    conn_id      text PRIMARY KEY,
    conn_type    text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    host         text NOT NULL DEFAULT '',
    schema       text NOT NULL DEFAULT '',
    login        text NOT NULL DEFAULT '',
    password     text NOT NULL DEFAULT '',
    port         integer,
    extra        text NOT NULL DEFAULT '',
    is_encrypted boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Bot secrets (docs/secrets.md): the values an apiCall's headers name as {{secret.NAME}}.
-- Each value is stored only as a SecretBox ciphertext bound to its row
-- ("bot:<botId>:secret:<NAME>"), so a ciphertext copied to another bot or name does not
-- decrypt. No query of the control plane returns a value; the executor decrypts them for
-- the outbound HTTP client only.

CREATE TABLE bot_secrets (
    bot_id      text NOT NULL REFERENCES bots (id),
    name        text NOT NULL CHECK (name ~ '^[A-Z][A-Z0-9_]{0,63}$'),
    ciphertext  text NOT NULL CHECK (length(ciphertext) <= 8192),
    updated_by  uuid REFERENCES users (id),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, name)
);

-- 0001_initial: the control plane's tables (DESIGN §7). PostgreSQL 15 or newer.
--
-- History is append-only: spec_versions, revisions, deployments, deployment_stages,
-- deployment_outcomes and audit_log refuse UPDATE and DELETE (botkiln_append_only).
-- A rollback is a new deployment, never an edit. Bots are soft-deleted (deleted_at)
-- so their history stays listable.
--
-- Secrets: bots.token_ciphertext and bots.webhook_secret_ciphertext hold SecretBox
-- ciphertexts (infra/crypto.py), never plaintext; users.password_hash is argon2id.

CREATE FUNCTION botkiln_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'botkiln: % is append-only; % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'raise_exception', HINT = 'history is never edited: record a new row instead';
END
$$;

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '_%@_%' AND length(email) <= 320),
    display_name  text NOT NULL DEFAULT '' CHECK (length(display_name) <= 128),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE project_members (
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    added_by   uuid REFERENCES users (id),
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user_idx ON project_members (user_id);

-- A bot's id is its BotSpec meta.botId, the artifact path segment and the webhook
-- path segment; ids are never reused (a deleted bot keeps its row).
CREATE TABLE bots (
    id                        text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    project_id                uuid NOT NULL REFERENCES projects (id),
    name                      text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    telegram_bot_id           bigint,
    telegram_username         text,
    token_ciphertext          text NOT NULL,
    webhook_secret_ciphertext text NOT NULL,
    active_rev                text,
    active_since              timestamptz,
    created_by                uuid REFERENCES users (id),
    created_at                timestamptz NOT NULL DEFAULT now(),
    deleted_at                timestamptz
);
CREATE INDEX bots_project_idx ON bots (project_id);
-- One live bot per Telegram bot: two rows with one token would fight over its webhook.
CREATE UNIQUE INDEX bots_telegram_bot_id_key ON bots (telegram_bot_id) WHERE deleted_at IS NULL;

-- Immutable spec versions, numbered 1, 2, … per bot; the primary key is the
-- optimistic-concurrency guard (two saves on one base: one wins, one conflicts).
CREATE TABLE spec_versions (
    bot_id     text NOT NULL REFERENCES bots (id),
    version    integer NOT NULL CHECK (version >= 1),
    spec       text NOT NULL,
    spec_hash  text NOT NULL CHECK (spec_hash ~ '^[0-9a-f]{64}$'),
    author_id  uuid REFERENCES users (id),
    message    text NOT NULL DEFAULT '' CHECK (length(message) <= 1000),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, version)
);

CREATE TABLE revisions (
    bot_id           text NOT NULL REFERENCES bots (id),
    rev_hash         text NOT NULL CHECK (rev_hash ~ '^[0-9a-f]{64}$'),
    spec_version     integer,
    spec_hash        text NOT NULL CHECK (spec_hash ~ '^[0-9a-f]{64}$'),
    artifacts_uri    text NOT NULL,
    bot_js_sha256    text NOT NULL CHECK (bot_js_sha256 ~ '^[0-9a-f]{64}$'),
    bot_js_size      integer NOT NULL CHECK (bot_js_size >= 0),
    spec_json_sha256 text NOT NULL CHECK (spec_json_sha256 ~ '^[0-9a-f]{64}$'),
    spec_json_size   integer NOT NULL CHECK (spec_json_size >= 0),
    rev_json_sha256  text NOT NULL CHECK (rev_json_sha256 ~ '^[0-9a-f]{64}$'),
    rev_json_size    integer NOT NULL CHECK (rev_json_size >= 0),
    build            jsonb NOT NULL,
    rev              jsonb NOT NULL,
    created_by       uuid REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, rev_hash),
    FOREIGN KEY (bot_id, spec_version) REFERENCES spec_versions (bot_id, version)
);

-- Traffic points at a revision of the same bot, or at nothing yet.
ALTER TABLE bots
    ADD CONSTRAINT bots_active_rev_fkey FOREIGN KEY (id, active_rev) REFERENCES revisions (bot_id, rev_hash);

CREATE TABLE tasks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind            text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    payload         jsonb NOT NULL DEFAULT '{}',
    request_hash    text NOT NULL,
    bot_id          text REFERENCES bots (id),
    actor_id        uuid REFERENCES users (id),
    idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    lease_owner     text,
    lease_until     timestamptz,
    result          jsonb,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    CHECK ((status = 'running') = (lease_until IS NOT NULL AND lease_owner IS NOT NULL)),
    CHECK ((status IN ('succeeded', 'failed')) = (finished_at IS NOT NULL))
);
-- The same (actor, key) names one task forever; a null actor (the system) is one actor.
CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (actor_id, idempotency_key) NULLS NOT DISTINCT
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_lease_idx ON tasks (lease_until) WHERE status = 'running';
CREATE INDEX tasks_bot_idx ON tasks (bot_id, created_at DESC);

CREATE TABLE deployments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id       text NOT NULL REFERENCES bots (id),
    rev_hash     text NOT NULL,
    previous_rev text,
    kind         text NOT NULL CHECK (kind IN ('deploy', 'rollback')),
    actor_id     uuid REFERENCES users (id),
    why          text NOT NULL DEFAULT '' CHECK (length(why) <= 1000),
    task_id      uuid REFERENCES tasks (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (bot_id, rev_hash) REFERENCES revisions (bot_id, rev_hash)
);
CREATE INDEX deployments_bot_idx ON deployments (bot_id, id DESC);

CREATE TABLE deployment_stages (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_id bigint NOT NULL REFERENCES deployments (id),
    stage         text NOT NULL CHECK (stage ~ '^[a-z][a-z0-9-]{0,31}$'),
    status        text NOT NULL CHECK (status IN ('started', 'passed', 'failed')),
    detail        text NOT NULL DEFAULT '',
    at            timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX deployment_stages_deployment_idx ON deployment_stages (deployment_id, id);

-- At most one outcome per deployment: finishing twice is refused by the key.
CREATE TABLE deployment_outcomes (
    deployment_id bigint PRIMARY KEY REFERENCES deployments (id),
    status        text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    failed_stage  text,
    reason        text NOT NULL DEFAULT '',
    finished_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((status = 'failed') = (failed_stage IS NOT NULL))
);

-- Who did what. No foreign keys: the record outlives what it names. Never secrets.
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor_id   uuid,
    action     text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{0,63}$'),
    project_id uuid,
    bot_id     text,
    target     text,
    detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_project_idx ON audit_log (project_id, id DESC);
CREATE INDEX audit_log_bot_idx ON audit_log (bot_id, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, id DESC);

CREATE TRIGGER spec_versions_append_only BEFORE UPDATE OR DELETE ON spec_versions
    FOR EACH ROW EXECUTE FUNCTION botkiln_append_only();
CREATE TRIGGER revisions_append_only BEFORE UPDATE OR DELETE ON revisions
    FOR EACH ROW EXECUTE FUNCTION botkiln_append_only();
CREATE TRIGGER deployments_append_only BEFORE UPDATE OR DELETE ON deployments
    FOR EACH ROW EXECUTE FUNCTION botkiln_append_only();
CREATE TRIGGER deployment_stages_append_only BEFORE UPDATE OR DELETE ON deployment_stages
    FOR EACH ROW EXECUTE FUNCTION botkiln_append_only();
CREATE TRIGGER deployment_outcomes_append_only BEFORE UPDATE OR DELETE ON deployment_outcomes
    FOR EACH ROW EXECUTE FUNCTION botkiln_append_only();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION botkiln_append_only();

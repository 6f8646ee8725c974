-- Progressive delivery (docs/rollouts.md): gradual rollouts by chat, pinned test chats,
-- conversation affinity.
--
-- bots.route_version counts every change of what decides a chat's revision (active_rev,
-- draining_rev, affinity, the live rollout and its pins); the runtime copy of the route in
-- Redis is only replaced by a newer version, so a late writer never undoes a step.
-- bots.draining_rev is the revision a deploy or a promotion flipped away from: chats in the
-- middle of a flow on it finish that flow there (up to affinity_max_age_s); a rollback or an
-- abort clears it (a revision rolled back from is not trusted with anyone's conversation).

ALTER TABLE bots
    ADD COLUMN route_version      bigint  NOT NULL DEFAULT 0,
    ADD COLUMN draining_rev       text,
    ADD COLUMN affinity_max_age_s integer NOT NULL DEFAULT 1800 CHECK (affinity_max_age_s BETWEEN 0 AND 604800);

-- At most one live (running or paused) rollout per bot; finished ones stay as history.
CREATE TABLE rollouts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id           text NOT NULL REFERENCES bots (id),
    stable_rev       text NOT NULL,
    candidate_rev    text NOT NULL,
    percent          smallint NOT NULL CHECK (percent BETWEEN 0 AND 100),
    status           text NOT NULL CHECK (status IN ('running', 'paused', 'completed', 'aborted')),
    steps            smallint[] NOT NULL DEFAULT '{}',
    auto             boolean NOT NULL DEFAULT false,
    dwell_s          integer NOT NULL DEFAULT 300 CHECK (dwell_s BETWEEN 0 AND 604800),
    error_margin     double precision NOT NULL DEFAULT 0.05 CHECK (error_margin >= 0 AND error_margin <= 1),
    min_updates      integer NOT NULL DEFAULT 50 CHECK (min_updates >= 1),
    step_started_at  timestamptz NOT NULL DEFAULT now(),
    reason           text NOT NULL DEFAULT '' CHECK (length(reason) <= 1000),
    created_by       uuid REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    ended_at         timestamptz,
    CHECK (stable_rev <> candidate_rev),
    FOREIGN KEY (bot_id, candidate_rev) REFERENCES revisions (bot_id, rev_hash),
    FOREIGN KEY (bot_id, stable_rev) REFERENCES revisions (bot_id, rev_hash)
);
CREATE UNIQUE INDEX rollouts_live_key ON rollouts (bot_id) WHERE status IN ('running', 'paused');
CREATE INDEX rollouts_bot_idx ON rollouts (bot_id, id DESC);

-- Chats pinned to a live rollout's candidate (an operator's own account), whatever the percentage.
CREATE TABLE rollout_pins (
    rollout_id bigint NOT NULL REFERENCES rollouts (id),
    chat_id    bigint NOT NULL,
    created_by uuid REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rollout_id, chat_id)
);

-- Every traffic step of a rollout is a deployment record (kind 'rollout', with its percentage).
ALTER TABLE deployments DROP CONSTRAINT deployments_kind_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_kind_check CHECK (kind IN ('deploy', 'rollback', 'rollout'));
ALTER TABLE deployments ADD COLUMN percent smallint CHECK (percent BETWEEN 0 AND 100);

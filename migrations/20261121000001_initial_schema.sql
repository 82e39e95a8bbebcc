-- encache's schema. Every feed is read per user, newest first, with keyset pagination on
-- (sort time, id): each feed has a composite index that serves exactly that order.

CREATE TABLE users (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Cognito's immutable user id; the only identity handlers trust.
    cognito_sub  text        NOT NULL UNIQUE CHECK (length(cognito_sub) BETWEEN 1 AND 128),
    email        text        NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    plan         text        NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'plus', 'pro')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memories (
    id                     uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Chosen by the server, under the owner's prefix; never client-chosen path segments.
    s3_key                 text        NOT NULL UNIQUE,
    title                  text,
    file_name              text,
    declared_content_type  text        NOT NULL,
    declared_size_bytes    bigint      NOT NULL CHECK (declared_size_bytes > 0),
    actual_content_type    text,
    actual_size_bytes      bigint,
    etag                   text,
    status                 text        NOT NULL DEFAULT 'pending'
                                       CHECK (status IN ('pending', 'ready', 'failed', 'expired')),
    status_reason          text,
    -- S3's per-key event sequencer of the last event applied: later events only move forward.
    last_sequencer         text,
    captured_at            timestamptz,
    upload_expires_at      timestamptz NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    completed_at           timestamptz
);

-- The memory feed: one user's memories in one status, newest first.
CREATE INDEX memories_feed_idx ON memories (user_id, status, created_at DESC, id DESC);
-- The expiry sweep: only pending rows, by deadline.
CREATE INDEX memories_pending_expiry_idx ON memories (upload_expires_at) WHERE status = 'pending';

CREATE TABLE conversations (
    id                    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id               uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title                 text        NOT NULL DEFAULT '',
    last_message_preview  text,
    message_count         integer     NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now(),
    last_activity_at      timestamptz NOT NULL DEFAULT now()
);

-- The conversation feed: most recent activity first.
CREATE INDEX conversations_feed_idx ON conversations (user_id, last_activity_at DESC, id DESC);

CREATE TABLE messages (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id  uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role             text        NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    body             text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- A conversation's messages, newest first, paging back in time.
CREATE INDEX messages_feed_idx ON messages (conversation_id, created_at DESC, id DESC);

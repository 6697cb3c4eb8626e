-- Layout 1 of the jxg store on PostgreSQL: one row per record, the records themselves in the
-- engine-neutral form of jxg_core::store::engine (postcard bytes for messages and delivery rows,
-- JSON text for audit entries). Text keys sort bytewise (COLLATE "C"), as the engine's cursors do.

CREATE TABLE jxg_state (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    -- the sequence number the next accepted message takes
    next_seq bigint NOT NULL
);

-- waiting and dead deliveries per recipient, written with every batch that changes them
CREATE TABLE jxg_counts (
    recipient text COLLATE "C" PRIMARY KEY,
    waiting bigint NOT NULL,
    dead bigint NOT NULL
);

-- one accepted message: metadata, the canonical body once, every recipient's copy
CREATE TABLE jxg_messages (
    id uuid PRIMARY KEY,
    seq bigint NOT NULL,
    record bytea NOT NULL
);

CREATE TABLE jxg_idempotency (
    sender text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    message_id uuid NOT NULL,
    body_sha256 text NOT NULL,
    PRIMARY KEY (sender, key)
);

CREATE TABLE jxg_cases (
    case_id text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    message_id uuid NOT NULL,
    PRIMARY KEY (case_id, seq)
);

-- one recipient's delivery of one message; class 0 waiting, 1 delivered, 2 dead
CREATE TABLE jxg_deliveries (
    recipient text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    class smallint NOT NULL,
    row bytea NOT NULL,
    PRIMARY KEY (recipient, seq)
);
CREATE INDEX jxg_deliveries_by_class ON jxg_deliveries (class, recipient, seq);

-- the audit log, chained above the engine; `entry` is the entry's JSON form
CREATE TABLE jxg_audit (
    seq bigint PRIMARY KEY,
    entry text NOT NULL
);

CREATE TABLE jxg_audit_subjects (
    subject text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (subject, seq)
);

CREATE TABLE jxg_checkpoints (
    seq bigint PRIMARY KEY,
    jws text NOT NULL
);

CREATE TABLE jxg_signing_keys (
    kid text COLLATE "C" PRIMARY KEY,
    record text NOT NULL
);

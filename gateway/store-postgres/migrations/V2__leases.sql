-- Leases of entries, shared by every node: a delivery in flight or an inbox entry offered and
-- not yet acknowledged, held by one node until it ends or expires (then any node may take it).
-- Unlogged: a lease is taken and ended without waiting for the disk, and a database that
-- crashes or fails over forgets them, which offers those entries again (as a restart of a
-- single node does); it never loses a message.
CREATE UNLOGGED TABLE jxg_leases (
    recipient text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    holder text COLLATE "C" NOT NULL,
    until timestamptz NOT NULL,
    PRIMARY KEY (recipient, seq)
);

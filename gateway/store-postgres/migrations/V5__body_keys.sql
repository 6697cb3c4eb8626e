-- The key each message's bodies are sealed under, apart from the record: destroying a message's
-- key (its bodies erased or purged, or the message removed) deletes its row here, and the sealed
-- bodies any older version of the record still holds cannot be opened again. Records written
-- before keep their bodies as they were stored and read as before.
CREATE TABLE jxg_body_keys (
    id uuid PRIMARY KEY,
    key bytea NOT NULL CHECK (length(key) = 32)
);

-- Message records (the canonical body and every recipient's copy) and audit runs are kilobytes,
-- stored out of line and compressed by the server: with lz4 rather than its default, pglz, which
-- takes several times as long for each. Rows written before keep their method and read as
-- before. A server built without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE jxg_messages ALTER COLUMN record SET COMPRESSION lz4;
    ALTER TABLE jxg_audit_runs ALTER COLUMN entries SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this server has no lz4: records stay compressed with pglz';
END
$$;

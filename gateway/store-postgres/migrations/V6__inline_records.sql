-- A message record is a few kilobytes of sealed bodies (compressed before they are sealed, so
-- the server's compression wins nothing on them), and an audit run a few kilobytes of JSON.
-- Above about 2 KB the server moved each into its TOAST table, in chunks: two more rows and
-- two more index entries per message, written and read with every record. Rows up to a page
-- (8160 bytes) now stay in the table's own page, neither compressed nor moved; larger ones are
-- still compressed and moved out of line. Rows written before keep their place and read as
-- before.
ALTER TABLE jxg_messages SET (toast_tuple_target = 8160);
ALTER TABLE jxg_audit_runs SET (toast_tuple_target = 8160);

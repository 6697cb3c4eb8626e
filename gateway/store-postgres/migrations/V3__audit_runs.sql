-- Layout 2 of the audit log: the entries one batch appends, in one row (a run), and one index
-- row per subject and run listing the entries of the run that name it. A batch wrote a row per
-- entry and one per entry and subject it names (an acceptance has several entries, most of them
-- naming the same persons); now it writes one run and one row per subject. The entries are still
-- each one's JSON form (the hash is over it), their sequence numbers consecutive within a run, as
-- in the chain.
CREATE TABLE jxg_audit_runs (
    first_seq bigint PRIMARY KEY,
    last_seq bigint NOT NULL CHECK (last_seq >= first_seq),
    entries text[] NOT NULL
);

CREATE TABLE jxg_audit_run_subjects (
    subject text COLLATE "C" NOT NULL,
    first_seq bigint NOT NULL,
    -- ascending
    seqs bigint[] NOT NULL,
    PRIMARY KEY (subject, first_seq)
);

-- what layout 1 holds becomes runs of one entry each
INSERT INTO jxg_audit_runs (first_seq, last_seq, entries)
    SELECT seq, seq, ARRAY[entry] FROM jxg_audit;
INSERT INTO jxg_audit_run_subjects (subject, first_seq, seqs)
    SELECT subject, seq, ARRAY[seq] FROM jxg_audit_subjects;
DROP TABLE jxg_audit_subjects;
DROP TABLE jxg_audit;

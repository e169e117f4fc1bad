-- Purpose: the table `dups`: the sessions (about 1%) written a second time.
CREATE TEMP TABLE dups AS
SELECT i FROM range((SELECT n_sessions FROM cfg)) r(i), cfg WHERE rnd(i, 'duplicate') < dup_rate;

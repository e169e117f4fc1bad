-- Purpose: the session variable `seed`, which every pseudo-random macro hashes.
SET VARIABLE seed = $seed::BIGINT;

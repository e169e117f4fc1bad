-- Purpose: the temporary macros the queries share (random draws, ids, number and text formats).
-- One statement per macro; they read the session variable `seed` (seed.sql).

-- Uniform in [0, 1). Hashing one mixed 64-bit word: DuckDB's multi-argument hash combines
-- its inputs too weakly for independent draws per salt.
CREATE TEMP MACRO rnd(x, salt) AS
    (hash(xor(x::UBIGINT, hash(getvariable('seed'), salt))) >> 11)::DOUBLE
    / 9007199254740992.0;

CREATE TEMP MACRO pick(x, salt, k) AS least(floor(rnd(x, salt) * k), k - 1)::BIGINT;

-- x -> (x * odd + c) mod 16^w is a bijection, so ids never collide.
CREATE TEMP MACRO hexid(x, salt, w) AS lower(lpad(to_hex((
    (x::HUGEINT * ((hash(getvariable('seed'), salt, 'mul') >> 8)::HUGEINT * 2 + 1)
     + hash(getvariable('seed'), salt, 'add')::HUGEINT) % (1::HUGEINT << (4 * w))
    )::BIGINT), w, '0'));

CREATE TEMP MACRO iso_z(us) AS strftime(make_timestamp(us), '%Y-%m-%dT%H:%M:%SZ');

CREATE TEMP MACRO rank_of(x) AS CASE WHEN x IS NULL THEN NULL WHEN x >= 90 THEN 'gold'
    WHEN x >= 75 THEN 'silver' WHEN x >= 50 THEN 'bronze' ELSE 'unranked' END;

CREATE TEMP MACRO num_text(x) AS CASE WHEN x IS NULL THEN ''
    WHEN x = trunc(x) THEN x::BIGINT::VARCHAR ELSE x::VARCHAR END;

CREATE TEMP MACRO num_json(x) AS CASE WHEN x IS NULL THEN NULL::JSON
    WHEN x = trunc(x) THEN to_json(x::BIGINT) ELSE to_json(x) END;

CREATE TEMP MACRO csv_text(s) AS CASE WHEN s IS NULL THEN ''
    WHEN contains(s, ',') OR contains(s, '"') OR contains(s, chr(10))
      OR contains(s, chr(13)) THEN '"' || replace(s, '"', '""') || '"'
    ELSE s END;

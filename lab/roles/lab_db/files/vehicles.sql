-- DealerScope lab schema and seed (idempotent). The one parameter is the number of seed rows;
-- no percent sign may appear below (psycopg2 parameter syntax), hence mod().
CREATE TABLE IF NOT EXISTS vehicles (
    id            bigserial PRIMARY KEY,
    vin           char(17) NOT NULL UNIQUE,
    make          text NOT NULL,
    model         text NOT NULL,
    year          smallint NOT NULL,
    price         numeric(10, 2) NOT NULL,
    price_score   numeric(10, 2) NOT NULL,
    market_factor numeric(10, 4) NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_vehicles_make_model ON vehicles (make, model);
WITH wanted AS (SELECT %s::int AS n), have AS (SELECT count(*) AS c FROM vehicles),
ins AS (
    INSERT INTO vehicles (vin, make, model, year, price, price_score, market_factor)
    SELECT upper(substr(md5('vin' || g), 1, 17)),
           (ARRAY['Toyota','Ford','Honda','Chevrolet','BMW','Audi','Kia','Tesla'])[1 + mod(g, 8)],
           (ARRAY['Base','Sport','Touring','Limited','XLE','LX'])[1 + mod(g, 6)],
           2008 + mod(g, 17),
           round((8000 + mod(g * 7919, 62000))::numeric, 2),
           round((40 + mod(g * 31, 60))::numeric, 2),
           round((0.8 + mod(g * 17, 40) / 100.0)::numeric, 4)
    FROM wanted, have, generate_series(1, wanted.n) AS g
    WHERE have.c = 0
    RETURNING 1
)
SELECT count(*) AS seeded FROM ins;

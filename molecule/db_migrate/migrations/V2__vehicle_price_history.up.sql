-- Expand only: a new table the old release ignores.
CREATE TABLE vehicle_price_history (
    vehicle_id  bigint NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    price       numeric(10, 2) NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vehicle_id, recorded_at)
);
INSERT INTO vehicle_price_history (vehicle_id, price) SELECT id, price FROM vehicles;

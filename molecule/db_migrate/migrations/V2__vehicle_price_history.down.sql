DROP TABLE IF EXISTS vehicle_price_history;

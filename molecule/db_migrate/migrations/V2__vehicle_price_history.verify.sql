SELECT (SELECT count(*) FROM vehicle_price_history) = (SELECT count(*) FROM vehicles);

-- The readiness document's example migration (its BEGIN/COMMIT are db_migrate's: one transaction per migration).
ALTER TABLE vehicles ADD COLUMN enhanced_score DECIMAL(10,2);
CREATE INDEX idx_vehicles_enhanced_score ON vehicles(enhanced_score);
UPDATE vehicles SET enhanced_score = price_score * market_factor WHERE enhanced_score IS NULL;

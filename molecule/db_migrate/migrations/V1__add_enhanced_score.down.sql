DROP INDEX IF EXISTS idx_vehicles_enhanced_score;
ALTER TABLE vehicles DROP COLUMN IF EXISTS enhanced_score;

-- Data integrity: no vehicle without a score (the document's SELECT COUNT(*) ... IS NULL, as a pass/fail).
SELECT COUNT(*) = 0 FROM vehicles WHERE enhanced_score IS NULL;

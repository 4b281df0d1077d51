-- Data gaps (issue 20, finding 3): a logger's declared sampling interval. An interval between two
-- readings longer than CELLTRAIL_GAP_FACTOR times it is a gap, counted neither in nor out of range.
-- NULL: not declared; the engine then learns it from the readings (the shortest interval so far).
ALTER TABLE loggers ADD COLUMN sample_interval_s integer CHECK (sample_interval_s BETWEEN 1 AND 86400);

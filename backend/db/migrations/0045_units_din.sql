-- A scan names its bags by unit id or by ISBT 128 DIN (backend/db/repo/cases.py, lock_visible_units:
-- `id = ANY(...) OR din = ANY(...)`). Without an index on `din` the OR cannot be answered from indexes, so
-- every scan read the whole `units` table, a cost growing with every bag ever registered (found by
-- bench/growth.py). With it the look-up is two index probes combined (BitmapOr).
CREATE INDEX units_din ON units (din);

-- What a bag label carries beyond identity (issue 19): the ISBT 128 product code (8 characters, without
-- its '=<' data identifier), the lot and the volume as printed. Given when the bag is registered and
-- recorded in its registration event; a unit registered before keeps none and prints without them.
ALTER TABLE units
    ADD COLUMN product_code text CHECK (product_code ~ '^[A-Z][0-9]{4}[A-Z0-9][A-Z0-9][a-z0-9]$'),
    ADD COLUMN lot text CHECK (length(lot) BETWEEN 1 AND 40),
    ADD COLUMN volume text CHECK (length(volume) BETWEEN 1 AND 40);

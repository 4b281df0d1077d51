-- Product catalogue (issue 21): each planning product (therapy) declares the limits its bags are held to.
-- Existing rows take the defaults below: the window the custody rules used before for every product bag
-- (60 min), storage in the vapour phase of liquid nitrogen, and a nine-month shelf life.
ALTER TABLE planning_products
    -- Minutes from the thaw the record holds to the latest infusion: a bag past it is a STOP.
    ADD COLUMN thaw_to_infusion_min integer NOT NULL DEFAULT 60
        CHECK (thaw_to_infusion_min BETWEEN 5 AND 1440),
    -- The range the product is stored in, whole degrees Celsius (LN2 vapour: -196 to -150).
    ADD COLUMN storage_min_c integer NOT NULL DEFAULT -196 CHECK (storage_min_c BETWEEN -200 AND 40),
    ADD COLUMN storage_max_c integer NOT NULL DEFAULT -150 CHECK (storage_max_c BETWEEN -200 AND 40),
    -- Days from manufacture (cryopreservation) to expiry of a product bag.
    ADD COLUMN shelf_life_days integer NOT NULL DEFAULT 270 CHECK (shelf_life_days BETWEEN 1 AND 3650),
    ADD CONSTRAINT planning_products_storage_range CHECK (storage_min_c < storage_max_c);

-- The catalogue product a product bag is of, set at its registration (from the case's order or named by
-- manufacturing): its thaw window and shelf life come from there. NULL: a bag registered without one
-- (the custody rules' defaults apply).
ALTER TABLE units ADD COLUMN catalogue_product text REFERENCES planning_products (code);
-- When the bag was made (cryopreserved), as registered: the start of its shelf life.
ALTER TABLE units ADD COLUMN manufactured_at timestamptz;

-- The scan's look-up of its units and the update of their status, planned once per connection. As plain
-- statements their generic plans assume ten units for `= ANY(array)`, which costs more than the custom plan
-- of the one bag a scan names once `units` holds more than a few rows; the plan cache then planned them
-- anew on every scan, and that planning was the part of a scan that grew with the number of cases ever
-- made. The generic plans are index look-ups whatever the size: units by primary key or DIN, the case by
-- its key, and the visibility checks per case on the (coi) indexes of shipments and units.
CREATE FUNCTION lock_visible_units(p_ids text[], p_dins text[], p_sites text[])
    RETURNS TABLE (id text, coi text, kind text, din text, product text, expires_at timestamptz,
                   status text, site text, holder_id bigint, shipment_id text, storage_location text,
                   released boolean, quarantined boolean, thawed_at timestamptz, product_code text,
                   lot text, volume text, catalogue_product text, manufactured_at timestamptz,
                   consent_ref text, thaw_to_infusion_min integer, site_zone text)
    LANGUAGE plpgsql
    -- Planned once for any number of bags, the look-up must still fetch each named bag's case by its key:
    -- a hash join would read every case to find the one or two a scan names.
    SET plan_cache_mode = force_generic_plan SET enable_hashjoin = off SET enable_mergejoin = off AS $$
#variable_conflict use_column
BEGIN
    -- A unit is visible when its case is: the case's treatment site, the ends of its legs, or where one of
    -- its units is. NULL sites: no restriction (administrators).
    RETURN QUERY
    SELECT u.id, u.coi, u.kind, u.din, u.product, u.expires_at, u.status, u.site, u.holder_id, u.shipment_id,
           u.storage_location, u.released, u.quarantined, u.thawed_at, u.product_code, u.lot, u.volume,
           u.catalogue_product, u.manufactured_at, u.consent_ref,
           (SELECT p.thaw_to_infusion_min FROM planning_products p WHERE p.code = u.catalogue_product),
           (SELECT t.time_zone FROM sites t WHERE t.code = u.site)
      FROM units u JOIN cases c ON c.coi = u.coi
     WHERE (u.id = ANY(p_ids) OR u.din = ANY(p_dins))
       AND (p_sites IS NULL
            OR c.treatment_site = ANY(p_sites)
            OR EXISTS (SELECT 1 FROM shipments s
                        WHERE s.coi = u.coi AND (s.from_site = ANY(p_sites) OR s.to_site = ANY(p_sites)))
            OR EXISTS (SELECT 1 FROM units v WHERE v.coi = u.coi AND v.site = ANY(p_sites)))
     ORDER BY u.id
       FOR UPDATE OF u;
END
$$;

CREATE FUNCTION set_unit_status(p_ids text[], p_status text, p_storage_location text) RETURNS void
    LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    UPDATE units SET status = p_status,
                     thawed_at = CASE WHEN p_status = 'thawed' THEN now() ELSE thawed_at END,
                     storage_location = COALESCE(p_storage_location, storage_location)
     WHERE id = ANY(p_ids);
END
$$;

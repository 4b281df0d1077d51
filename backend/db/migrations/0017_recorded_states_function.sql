-- The scan's chain lock and its look-up of what the record says about the scanned units and shipment
-- (issue 18: state from the record) as one function. As a plain statement, PostgreSQL planned it again
-- on every scan: its cost depends on parameters (how many units, whether a shipment was scanned), so the
-- plan cache kept choosing a custom plan, and planning four correlated look-ups cost more than running
-- them. In a PL/pgSQL function with a forced generic plan it is planned once per connection; every
-- look-up is an index walk over one case's events whatever the parameters are, so the generic plan is
-- the plan a custom one would be.
--
-- It runs with the caller's rights (not SECURITY DEFINER): it reads and locks only what the caller may.
CREATE FUNCTION case_recorded_states(
    p_coi text,
    p_unit_ids text[],
    p_unit_actions text[],
    p_shipment_id text,
    p_shipment_actions text[]
) RETURNS TABLE (chain_length integer, chain_head bytea, unit_actions json, shipment_action json)
    LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN QUERY
    SELECT c.chain_length, c.chain_head,
           -- unit id -> [action of its last accepted status-setting step, released, quarantined]
           (SELECT json_object_agg(u.id, json_build_array(
                (SELECT e.action FROM custody_events e
                  WHERE e.coi = c.coi AND e.outcome = 'accepted' AND e.action = ANY(p_unit_actions)
                    AND e.unit_ids @> ARRAY[u.id]
                  ORDER BY e.seq DESC LIMIT 1),
                -- `action IN ('release', 'receipt')` lets both look-ups use the partial index of 0014
                EXISTS (SELECT FROM custody_events e
                         WHERE e.coi = c.coi AND e.action IN ('release', 'receipt')
                           AND e.action = 'release' AND e.outcome = 'accepted'
                           AND e.unit_ids @> ARRAY[u.id]),
                EXISTS (SELECT FROM custody_events e
                         WHERE e.coi = c.coi AND e.action IN ('release', 'receipt')
                           AND e.action = 'receipt' AND e.outcome = 'accepted'
                           AND e.data->>'decision' = 'quarantine'
                           AND e.unit_ids @> ARRAY[u.id])))
              FROM unnest(p_unit_ids) AS u(id)),
           -- [action, receipt decision] of the shipment's last accepted status-setting step
           (SELECT json_build_array(e.action, e.data->>'decision') FROM custody_events e
             WHERE e.shipment_id = p_shipment_id AND e.coi = c.coi AND e.outcome = 'accepted'
               AND e.action = ANY(p_shipment_actions)
               AND (e.action <> 'receive' OR cardinality(e.unit_ids) = 0)
             ORDER BY e.seq DESC LIMIT 1)
      FROM cases c WHERE c.coi = p_coi
       FOR UPDATE OF c;
END
$$;

-- QA holds (issue 21): QA puts a unit on hold (quarantine) and releases it, each a signed custody event
-- ('hold', 'hold_released'). A unit's quarantine is therefore what the last of its quarantining steps
-- says — a receipt that decided 'quarantine', a hold, or a release from hold — and the scan's look-up of
-- the record (the function of 0017 and 0019) reads it so. The partial index keeps that look-up to the
-- few such events of a case, however long its chain.
CREATE INDEX custody_events_quarantine_steps ON custody_events (coi, seq)
    WHERE action IN ('receipt', 'hold', 'hold_released');

DROP FUNCTION case_recorded_states(text, text[], text[], text, text[]);

CREATE FUNCTION case_recorded_states(
    p_coi text,
    p_unit_ids text[],
    p_unit_actions text[],
    p_shipment_id text,
    p_shipment_actions text[]
) RETURNS TABLE (chain_length integer, chain_head bytea, case_status text, unit_actions json,
                shipment_action json)
    LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN QUERY
    SELECT c.chain_length, c.chain_head, c.status,
           -- unit id -> [action of its last accepted status-setting step, that step's server time,
           -- released, quarantined]
           (SELECT json_object_agg(u.id, json_build_array(
                last.action, last.server_time,
                -- `action IN ('release', 'receipt')` lets the look-up use the partial index of 0014
                EXISTS (SELECT FROM custody_events e
                         WHERE e.coi = c.coi AND e.action IN ('release', 'receipt')
                           AND e.action = 'release' AND e.outcome = 'accepted'
                           AND e.unit_ids @> ARRAY[u.id]),
                COALESCE((SELECT e.action <> 'hold_released' FROM custody_events e
                           WHERE e.coi = c.coi AND e.action IN ('receipt', 'hold', 'hold_released')
                             AND e.outcome = 'accepted' AND e.unit_ids @> ARRAY[u.id]
                             AND (e.action <> 'receipt' OR e.data->>'decision' = 'quarantine')
                           ORDER BY e.seq DESC LIMIT 1), false)))
              FROM unnest(p_unit_ids) AS u(id)
              LEFT JOIN LATERAL (
                  SELECT e.action, e.server_time FROM custody_events e
                   WHERE e.coi = c.coi AND e.outcome = 'accepted' AND e.action = ANY(p_unit_actions)
                     AND e.unit_ids @> ARRAY[u.id]
                   ORDER BY e.seq DESC LIMIT 1) AS last ON true),
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

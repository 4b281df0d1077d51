-- The scan's look-up of the record (0017 to 0042) in a time that does not grow with the case's chain.
-- As a generic plan, the look-up of a unit's last status-setting step read every event of the case and
-- sorted them; it now walks the (coi, seq) index backwards and stops at the first match. A shipment's
-- last step is found on its own (shipment_id, seq) index, which also serves every look-up by shipment,
-- and a scan without a shipment looks for none.
CREATE INDEX custody_events_shipment_seq ON custody_events (shipment_id, seq) WHERE shipment_id IS NOT NULL;
DROP INDEX custody_events_shipment;

DROP FUNCTION case_recorded_states(text, text[], text[], text, text[]);

CREATE FUNCTION case_recorded_states(
    p_coi text,
    p_unit_ids text[],
    p_unit_actions text[],
    p_shipment_id text,
    p_shipment_actions text[]
) RETURNS TABLE (chain_length integer, chain_head bytea, case_status text,
                unit_ids text[], unit_last_actions text[], unit_last_times timestamptz[],
                unit_released boolean[], unit_quarantined boolean[],
                shipment_last_action text, shipment_decision text)
    LANGUAGE plpgsql
    -- Planned once per connection for any case, the look-ups must walk the case's events backwards and
    -- stop at the first match: a bitmap scan and sort of every event of the case would cost what the
    -- chain's length costs, on every scan.
    SET plan_cache_mode = force_generic_plan SET enable_bitmapscan = off SET enable_sort = off AS $$
BEGIN
    RETURN QUERY
    SELECT c.chain_length, c.chain_head, c.status,
           units.ids, units.last_actions, units.last_times, units.released, units.quarantined,
           shipment.action, shipment.decision
      FROM cases c
      -- per scanned unit: the action of its last accepted status-setting step, that step's server time,
      -- whether a QA release names it, whether its last quarantining step quarantined it
      CROSS JOIN LATERAL (
          SELECT array_agg(u.id ORDER BY u.n) AS ids,
                 array_agg(last.action ORDER BY u.n) AS last_actions,
                 array_agg(last.server_time ORDER BY u.n) AS last_times,
                 array_agg(
                     -- `action IN ('release', 'receipt')` lets the look-up use the partial index of 0014
                     EXISTS (SELECT FROM custody_events e
                              WHERE e.coi = c.coi AND e.action IN ('release', 'receipt')
                                AND e.action = 'release' AND e.outcome = 'accepted'
                                AND e.unit_ids @> ARRAY[u.id]) ORDER BY u.n) AS released,
                 array_agg(
                     COALESCE((SELECT e.action <> 'hold_released' FROM custody_events e
                                WHERE e.coi = c.coi AND e.action IN ('receipt', 'hold', 'hold_released')
                                  AND e.outcome = 'accepted' AND e.unit_ids @> ARRAY[u.id]
                                  AND (e.action <> 'receipt' OR e.data->>'decision' = 'quarantine')
                                ORDER BY e.seq DESC LIMIT 1), false) ORDER BY u.n) AS quarantined
            FROM unnest(p_unit_ids) WITH ORDINALITY AS u(id, n)
            LEFT JOIN LATERAL (
                SELECT e.action, e.server_time FROM custody_events e
                 WHERE e.coi = c.coi AND e.outcome = 'accepted' AND e.action = ANY(p_unit_actions)
                   AND e.unit_ids @> ARRAY[u.id]
                 ORDER BY e.seq DESC LIMIT 1) AS last ON true) AS units
      -- the action and receipt decision of the shipment's last accepted status-setting step
      LEFT JOIN LATERAL (
          SELECT e.action, e.data->>'decision' AS decision FROM custody_events e
           WHERE p_shipment_id IS NOT NULL AND e.shipment_id = p_shipment_id AND e.coi = c.coi AND e.outcome = 'accepted'
             AND e.action = ANY(p_shipment_actions)
             AND (e.action <> 'receive' OR cardinality(e.unit_ids) = 0)
           ORDER BY e.seq DESC LIMIT 1) AS shipment ON true
     WHERE c.coi = p_coi
       FOR UPDATE OF c;
END
$$;

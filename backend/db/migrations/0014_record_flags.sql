-- A scan compares the stored `released` and `quarantined` flags of the units it acts on with the record
-- (issue 18: state from the record): released when a QA release event names the unit, quarantined when
-- a receipt decided 'quarantine' for it. This small partial index finds those few events of a case
-- without walking its whole chain, however long the chain has grown.
CREATE INDEX custody_events_flag_steps ON custody_events (coi) WHERE action IN ('release', 'receipt');

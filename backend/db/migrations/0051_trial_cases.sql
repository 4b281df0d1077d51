-- Investigational cases (issue 25): a case that belongs to a clinical trial carries the trial's register
-- number (EU CT number, EudraCT or NCT id), the protocol, the trial site number and the subject
-- identifier. The subject identifier is the patient's pseudonym in the trial; who the subject is stays in
-- the trial site's own records, so a trial case holds neither a patient reference nor patient identity.
ALTER TABLE cases
    ADD COLUMN trial_register text CHECK (length(trial_register) BETWEEN 1 AND 40),
    ADD COLUMN trial_protocol text CHECK (length(trial_protocol) BETWEEN 1 AND 40),
    ADD COLUMN trial_site_number text CHECK (length(trial_site_number) BETWEEN 1 AND 20),
    ADD COLUMN trial_subject text CHECK (length(trial_subject) BETWEEN 1 AND 40),
    ADD COLUMN trial_sponsor text CHECK (length(trial_sponsor) BETWEEN 1 AND 60),
    -- All or nothing: a trial case names each of them.
    ADD CONSTRAINT cases_trial_complete CHECK (
        num_nulls(trial_register, trial_protocol, trial_site_number, trial_subject, trial_sponsor) IN (0, 5)),
    ADD CONSTRAINT cases_trial_pseudonymous CHECK (
        trial_subject IS NULL OR (patient_ref IS NULL AND birth_year IS NULL));

-- No patient identity for a trial case, whatever path writes the row.
CREATE FUNCTION refuse_trial_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM cases WHERE coi = NEW.coi AND trial_subject IS NOT NULL) THEN
        RAISE EXCEPTION 'case % belongs to a clinical trial: it holds no patient identity', NEW.coi
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER patient_identities_not_for_trials
    BEFORE INSERT OR UPDATE ON patient_identities
    FOR EACH ROW EXECUTE FUNCTION refuse_trial_identity();

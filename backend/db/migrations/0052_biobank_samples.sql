-- Biobank samples (issue 25): a research sample (unit kind SMP) names the consent it was taken under.
-- Samples registered before this migration are left as they were (NOT VALID); every new one needs it.
ALTER TABLE units
    ADD COLUMN consent_ref text CHECK (length(consent_ref) BETWEEN 1 AND 100),
    ADD CONSTRAINT units_sample_consent CHECK (kind <> 'SMP' OR consent_ref IS NOT NULL) NOT VALID;

"""GS1 EPCIS 2.0: export of custody steps as an EPCIS document, capture of partners' documents as custody
scans, and what both need: CBV 2.0 vocabulary, identifier URIs, the standard event hash and validation."""

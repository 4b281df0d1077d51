"""The vein-to-vein record of a case (as JSON and as a signed-off PDF), its temperature charts, the
`celltrail report` command, and the CSV exports of readings and alerts."""

"""What the server and its clients share, and nothing that knows either: identifiers (ISBT 128, GS1,
Celltrail's own) and their parsing. `backend`, `scanner`, `labels` and `firmware_bridge` depend on this
package; it depends on none of them (checked by `make lint`)."""

"""Pure protocol code: no database, no web framework."""

"""Settings, database, clock and ids: what every domain stands on."""

"""The database: the single source of truth for contacts, flows, runs and effects."""

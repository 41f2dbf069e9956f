"""Modal screens: cleanup confirmation, help, table choice."""

"""Verify: compare PostgreSQL tables with their Iceberg tables at one consistent point."""

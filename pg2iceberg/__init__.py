"""pg2iceberg: keep Apache Iceberg tables equal to PostgreSQL tables.

The engine lives here and never imports the console (``tui``) or textual.
"""

__version__ = "0.1.0"

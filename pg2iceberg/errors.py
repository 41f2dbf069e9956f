"""Error classes: what went wrong, and whether retrying can help."""


class Pg2IcebergError(Exception):
    """Base of every error pg2iceberg raises on purpose."""


class ConfigError(Pg2IcebergError):
    """The configuration or the command line is wrong (exit 2; nothing was changed)."""


class TerminalError(Pg2IcebergError):
    """A runtime failure that retrying will not fix; the message says what to do (exit 1)."""


class TransientError(Pg2IcebergError):
    """A failure worth retrying with backoff (network, lock, optimistic commit conflict)."""

"""Command line: parse flags, load the config, build the supervisor, pick a front end.

Exit codes: 0 success or clean stop; 1 runtime failure; 2 usage/config error or a refused
destructive mode; 3 verify found differences. Nothing deep in the engine calls sys.exit:
errors are raised and turned into exit codes here.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Callable, Sequence

from pg2iceberg import __version__
from pg2iceberg.errors import ConfigError, Pg2IcebergError
from pg2iceberg.secrets import redact

MODES = {
    "stream_only": "stream-only", "materializer_only": "materializer-only",
    "snapshot_only": "snapshot-only", "compact": "compact", "maintain": "maintain",
    "cleanup": "cleanup", "verify": "verify",
}
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_DIFFERENT = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"pg2iceberg: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the contract."""
    p = _Parser(prog="pg2iceberg", description="Keep Iceberg tables equal to PostgreSQL tables.")
    p.add_argument("--config", metavar="FILE", help="YAML config file")
    modes = p.add_mutually_exclusive_group()
    modes.add_argument("--stream-only", action="store_true", help="WAL writer only")
    modes.add_argument("--materializer-only", action="store_true", help="one materializer worker")
    modes.add_argument("--snapshot-only", action="store_true", help="one-shot copy, no slot")
    modes.add_argument("--compact", action="store_true", help="one compaction cycle")
    modes.add_argument("--maintain", action="store_true", help="one maintenance cycle")
    modes.add_argument("--cleanup", action="store_true", help="drop slot, publication, coordinator")
    modes.add_argument("--verify", action="store_true", help="compare PostgreSQL with Iceberg")
    modes.add_argument("--demo", action="store_true", help="throwaway PostgreSQL + demo workload")
    p.add_argument("--materializer-worker-id", metavar="ID")
    p.add_argument("--table", action="append", default=[], metavar="NAME")
    p.add_argument("--headless", action="store_true", help="JSON lines on stdout, no console")
    p.add_argument("--yes", action="store_true", help="confirm a destructive mode")
    p.add_argument("--force", action="store_true", help="cleanup although others look alive")
    p.add_argument("--log-level", default="INFO", metavar="LEVEL")
    p.add_argument("--version", action="version", version=f"pg2iceberg {__version__}")
    return p


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str) -> None:
    """Human diagnostics on stderr, secrets removed."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    try:
        root.setLevel(level.upper())
    except ValueError as exc:
        raise ConfigError(f"--log-level: {exc}") from exc
    for noisy in ("pyiceberg", "botocore", "s3fs", "aiobotocore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


HARD_EXIT_HOOKS: list[Callable[[], None]] = []  # run before exiting at once (e.g. stop the demo server)


def install_signal_handlers(stop: Callable[[], None]) -> None:
    """First SIGINT/SIGTERM: graceful stop. Second: exit at once."""
    received = []

    def handler(signum: int, _frame: object) -> None:
        if received:
            for hook in HARD_EXIT_HOOKS:
                try:
                    hook()
                except Exception:  # noqa: BLE001 - we are exiting anyway
                    pass
            os._exit(130)
        received.append(signum)
        sys.stderr.write("pg2iceberg: stopping (send the signal again to exit at once)\n")
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pg2iceberg`` script."""
    args = build_parser().parse_args(argv)
    try:
        setup_logging(args.log_level)
        return _run(args)
    except ConfigError as exc:
        sys.stderr.write(f"pg2iceberg: {redact(str(exc))}\n")
        return EXIT_USAGE
    except Pg2IcebergError as exc:
        sys.stderr.write(f"pg2iceberg: error: {redact(str(exc))}\n")
        return EXIT_FAILURE


def _mode(args: argparse.Namespace) -> str:
    for attr, name in MODES.items():
        if getattr(args, attr):
            return name
    return "single"


def _run(args: argparse.Namespace) -> int:
    from pg2iceberg.config import load_config

    mode = _mode(args)
    headless = args.headless or not sys.stdout.isatty()
    if args.demo:
        from pg2iceberg.demo.run import run_demo

        return run_demo(headless=headless)
    if mode == "materializer-only" and not (args.materializer_worker_id or os.environ.get("MATERIALIZER_WORKER_ID")):
        raise ConfigError("--materializer-only needs --materializer-worker-id ID")
    overrides = {}
    if args.materializer_worker_id:
        overrides["materializer_worker_id"] = args.materializer_worker_id
    config = load_config(args.config, overrides=overrides or None)
    if mode == "cleanup":
        from pg2iceberg.cleanup_prompt import run_cleanup

        return run_cleanup(config, yes=args.yes, force=args.force, headless=headless)
    return run_supervised(config, mode, tables=tuple(args.table), headless=headless)


def run_supervised(config: "object", mode: str, *, tables: tuple[str, ...] = (), headless: bool = True) -> int:
    """Run one mode over a loaded config with the chosen front end; returns the exit code."""
    from pg2iceberg.runtime.supervisor import Supervisor

    supervisor = Supervisor(config, mode, tables=tables)  # type: ignore[arg-type]
    install_signal_handlers(supervisor.stop)
    if not headless:
        try:
            from tui.app import run_console
        except ImportError:
            headless = True
            sys.stderr.write("pg2iceberg: the console is not available; running headless\n")
        else:
            return run_console(supervisor)
    from pg2iceberg.headless import run_headless

    return run_headless(supervisor)

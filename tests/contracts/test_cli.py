"""The outside contract: entry points, exit codes, import direction, secrets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pg2iceberg", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_engine_never_imports_textual() -> None:
    code = ("import sys, pg2iceberg.cli, pg2iceberg.runtime.supervisor, pg2iceberg.runtime.pipeline, "
            "pg2iceberg.headless; bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'tui')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_version_exits_0() -> None:
    result = _run("--version")
    assert result.returncode == 0 and result.stdout.startswith("pg2iceberg ")


def test_two_modes_is_a_usage_error() -> None:
    result = _run("--compact", "--maintain")
    assert result.returncode == 2
    assert "not allowed with" in result.stderr


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("source:\n  postgres:\n    url: postgresql://u:hunter2@127.0.0.1:1/db\n"
                      "sink:\n  flush_intervall: 1s\ntables: [public.t]\n")
    result = _run("--config", str(config), "--headless")
    assert result.returncode == 2
    assert "bad.yaml" in result.stderr and "sink.flush_intervall" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_unreachable_server_is_a_clear_runtime_error_without_secret(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("source:\n  postgres:\n    url: postgresql://u:hunter2@127.0.0.1:1/db\n"
                      "tables: [public.t]\n")
    result = _run("--config", str(config), "--headless")
    assert result.returncode == 1, result.stderr
    assert "127.0.0.1" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert '"event": "error"' in result.stdout

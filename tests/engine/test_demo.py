"""``--demo``: throwaway PostgreSQL + workload replicated headless, then everything stopped."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from pyiceberg.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from pathlib import Path
from pg2iceberg.cli import setup_logging
from pg2iceberg.demo.run import run_demo
setup_logging("INFO")
sys.exit(run_demo(headless=True, root=Path(sys.argv[1]), duration_s=float(sys.argv[2])))
"""


def _port_refuses(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_demo_replicates_and_cleans_up(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    (root / "warehouse").mkdir(parents=True)
    (root / "warehouse" / "stale.txt").write_text("from an older demo")  # must be wiped
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), "12"], cwd=tmp_path, capture_output=True,
        text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-4000:]

    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert any(r["type"] == "status" for r in lines)
    committed = [r for r in lines if r.get("type") == "event" and r.get("event") == "batch_committed"]
    assert any("orders" in str(r.get("table")) for r in committed), proc.stdout[-3000:]

    match = re.search(r"port (\d+)", proc.stderr)
    assert match, proc.stderr[-2000:]
    assert _port_refuses(int(match.group(1))), "the demo's PostgreSQL is still running"
    assert str(root) in proc.stderr

    assert not (root / "warehouse" / "stale.txt").exists()
    catalog = load_catalog("default", type="sql", uri=f"sqlite:///{root}/catalog.db",
                           warehouse=f"file://{root}/warehouse")
    ids = catalog.load_table(("pg2iceberg", "orders")).scan(selected_fields=("id",)).to_arrow()["id"]
    assert len(ids) > 0
    assert len(set(ids.to_pylist())) == len(ids)
    assert len(catalog.load_table(("pg2iceberg", "customers")).scan().to_arrow()) > 0

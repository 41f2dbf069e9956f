"""The real console in a real terminal (tmux) over the real engine and a real PostgreSQL."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from engine.harness import ROOT, assert_same, write_config

SERVER_LSN = re.compile(r"server\s+[0-9A-F]{1,8}/[0-9A-F]{1,8}\b")


class Terminal:
    """One detached tmux session on a tmux server of its own (its own socket), running a command."""

    def __init__(self, name: str, command: str, width: int, height: int):
        self.name = name
        self.tmux = ["tmux", "-L", name]  # a private server: nobody else's sessions or environment
        subprocess.run([*self.tmux, "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
                        command], check=True)
        shown, socket = subprocess.run(
            [*self.tmux, "display", "-p", "-t", name, "#{window_width}x#{window_height} #{socket_path}"],
            capture_output=True, text=True, check=True).stdout.split()
        self.socket = Path(socket)
        assert shown == f"{width}x{height}", f"tmux made a {shown} window, not {width}x{height}"

    def screen(self) -> str:
        """What the terminal shows now."""
        result = subprocess.run([*self.tmux, "capture-pane", "-p", "-t", self.name], capture_output=True,
                                text=True)
        return result.stdout

    def press(self, *keys: str) -> None:
        """Type keys (tmux key names: Escape, Tab, ...)."""
        for key in keys:
            subprocess.run([*self.tmux, "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.3)

    def wait_for(self, shows: Callable[[str], bool], what: str, timeout_s: float = 90) -> str:
        """Wait until the screen satisfies ``shows``; the screen then."""
        deadline = time.monotonic() + timeout_s
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if shows(screen):
                return screen
            time.sleep(0.25)
        raise AssertionError(f"the terminal never showed {what}; it shows:\n{screen}")

    def close(self) -> None:
        """Stop this terminal's private tmux server (and whatever still runs in it)."""
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)
        self.socket.unlink(missing_ok=True)


@pytest.fixture
def terminal_factory() -> Iterator[Callable[[str, int, int], Terminal]]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    opened: list[Terminal] = []

    def open_terminal(command: str, width: int, height: int) -> Terminal:
        terminal = Terminal(f"pg2iceberg-smoke-{os.getpid()}-{len(opened)}", command, width, height)
        opened.append(terminal)
        return terminal

    yield open_terminal
    for terminal in opened:
        terminal.close()


def test_console_starts_streams_takes_keys_and_quits_cleanly(
        pg_url: str, tmp_path: Path, terminal_factory: Callable[[str, int, int], Terminal]) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 500) g")
    config = write_config(tmp_path, pg_url, ["public.items"])
    rc_file = tmp_path / "exit-code"
    # tmux started from pytest hands the pane COLUMNS=80/LINES=24, which would pin the size
    command = (f"unset COLUMNS LINES; cd {shlex.quote(str(tmp_path))} && PYTHONWARNINGS=ignore "
               f"{shlex.quote(str(ROOT / '.venv/bin/pg2iceberg'))} --config {shlex.quote(str(config))}; "
               f"echo $? > {shlex.quote(str(rc_file))}; echo EXITED; sleep 600")
    term = terminal_factory(command, 120, 40)

    screen = term.wait_for(lambda s: bool(SERVER_LSN.search(s)) and "STREAMING" in s,
                           "a server LSN while streaming")
    assert "slot slot_" in screen and "public.items" in screen
    term.wait_for(lambda s: re.search(r"public\.items\s+done · 500 rows\s+500\b", s) is not None,
                  "the copied table with its 500 rows")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.items SELECT g, 'new ' || g FROM generate_series(501, 520) g")
    term.wait_for(lambda s: "committed public.items +20 -0 (20 changes)" in s,
                  "the committed batch in the log")

    term.press("?")
    help_screen = term.wait_for(lambda s: "Keys" in s and "compare PostgreSQL with Iceberg" in s,
                                "the help screen")
    assert "stop the pipeline gracefully and exit" in help_screen
    term.press("Escape")
    term.wait_for(lambda s: "compare PostgreSQL with Iceberg" not in s, "the help screen closed")

    term.press("p")
    term.wait_for(lambda s: "materializing PAUSED" in s and "p resume" in s,  # the footer offers the way back
                  "materializing paused")
    term.press("p")
    term.wait_for(lambda s: "materializing PAUSED" not in s and "p pause" in s, "materializing resumed")

    term.press("x")  # the real plan, then cancel: nothing is dropped
    plan = term.wait_for(lambda s: "Drop (type the name first)" in s, "the cleanup dialog")
    assert "will be dropped" in plan and "Cancel" in plan
    term.press("Escape")
    term.wait_for(lambda s: "Drop (type" not in s and "STREAMING" in s, "the dialog closed, still streaming")

    term.press("q")
    term.wait_for(lambda s: "EXITED" in s, "the process exiting", timeout_s=60)
    assert rc_file.read_text().strip() == "0"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        slots = conn.execute("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()")
        assert [r[0] for r in slots] == [f"slot_{pg_url.rsplit('/', 1)[1].lower()}"]
    assert assert_same(pg_url, tmp_path, "public.items", "items", "id") == 520  # all flushed on q

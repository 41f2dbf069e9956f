"""The ``--cleanup`` front end: show the plan, get the confirmation, run the cleanup.

The engine computes the plan (``PlanCleanup``) and re-checks its guards when executing
(``Cleanup``); this module only decides where the confirmation comes from:
``--yes`` confirms; on a terminal (stdin and stdout, no ``--headless``) the operator types
the slot name; otherwise the plan is printed and the run exits 2 having changed nothing.
A plan with nothing to do exits 0 without asking. Headless, the plan and the outcome are
also JSON-line events on stdout (``command_finished`` of ``plan_cleanup`` and ``cleanup``).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

from pg2iceberg.config import Config
from pg2iceberg.runtime import commands as c
from pg2iceberg.runtime.supervisor import Supervisor
from pg2iceberg.secrets import redact

EXIT_OK, EXIT_FAILURE, EXIT_REFUSED = 0, 1, 2


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as human lines."""
    lines = [f"Cleanup plan for slot {plan['slot']}:"]
    lines += [f"  - {item}" for item in plan["items"]]
    lines.append(f"Consequence: {plan['consequence']}.")
    if plan["blockers"]:
        lines.append("Blocked by other live pg2iceberg processes:")
        lines += [f"  ! {b}" for b in plan["blockers"]]
    return "\n".join(lines)


def run_cleanup(config: Config, *, yes: bool, force: bool, headless: bool,
                ask: Callable[[str], str] = input, err: TextIO | None = None) -> int:
    """Plan, confirm and execute a cleanup; returns the exit code."""
    err = err or sys.stderr
    sup = Supervisor(config, "cleanup")
    if headless:
        from pg2iceberg.headless import JsonLines, event_record

        lines = JsonLines()
        sup.events.subscribe(lambda e: lines.write(event_record(e), e.at))

    def say(text: str) -> None:
        err.write(redact(text) + "\n")
        err.flush()

    planned = sup.execute(c.PlanCleanup())
    if not planned.ok:
        say(f"pg2iceberg: error: {planned.summary}")
        return EXIT_FAILURE
    plan = planned.details
    say(format_plan(plan))
    if plan["nothing_to_do"]:
        say("pg2iceberg: nothing to do; nothing was changed")
        return EXIT_OK
    if plan["blockers"] and not force:
        say("pg2iceberg: cleanup refused while other pg2iceberg processes run; stop them or pass --force. "
            "Nothing was changed.")
        return EXIT_REFUSED
    if yes:
        confirm = plan["slot"]
    elif not headless and sys.stdin.isatty() and sys.stdout.isatty():
        try:
            confirm = ask(f"Type the slot name ({plan['slot']}) to drop it all, anything else cancels: ").strip()
        except (EOFError, KeyboardInterrupt):
            confirm = ""
        if confirm != plan["slot"]:
            say("pg2iceberg: not confirmed; nothing was changed")
            return EXIT_REFUSED
    else:
        say("pg2iceberg: cleanup needs confirmation: pass --yes (or run it on a terminal and type the "
            "slot name). Nothing was changed.")
        return EXIT_REFUSED
    outcome = sup.execute(c.Cleanup(confirm=confirm, force=force))
    say(f"pg2iceberg: {outcome.summary}")
    if outcome.ok:
        return EXIT_OK
    return outcome.exit_code or EXIT_FAILURE

"""Which engine function carries out each command.

Handlers take the supervisor (config, events, stop flag, the running pipeline if any) and
the command, and return a :class:`CommandOutcome`. They are named here by module path and
imported on first use, so a one-shot mode loads only what it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

from pg2iceberg.runtime import commands as c

if TYPE_CHECKING:
    from pg2iceberg.runtime.supervisor import Supervisor

Handler = Callable[["Supervisor", c.Command], c.CommandOutcome]

HANDLERS: dict[type, str] = {
    c.Snapshot: "pg2iceberg.runtime.live_actions:resnapshot",
    c.PauseMaterializing: "pg2iceberg.runtime.live_actions:pause",
    c.ResumeMaterializing: "pg2iceberg.runtime.live_actions:resume",
    c.Compact: "pg2iceberg.runtime.upkeep:compact",
    c.Maintain: "pg2iceberg.runtime.upkeep:maintain",
    c.Verify: "pg2iceberg.runtime.verify:verify",
    c.PlanCleanup: "pg2iceberg.runtime.cleanup:plan_cleanup",
    c.Cleanup: "pg2iceberg.runtime.cleanup:cleanup",
}


def handler_for(command: c.Command) -> Handler:
    """The function that carries out ``command``."""
    module_name, _, attr = HANDLERS[type(command)].partition(":")
    return getattr(importlib.import_module(module_name), attr)

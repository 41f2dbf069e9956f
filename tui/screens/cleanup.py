"""Cleanup confirmation: the engine's plan, Cancel focused, confirm only after typing the slot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from pg2iceberg.secrets import redact


@dataclass(frozen=True, slots=True)
class CleanupPlan:
    """What ``PlanCleanup`` reported: what goes, what it means, who else is alive."""

    slot: str
    items: tuple[str, ...]
    consequence: str
    blockers: tuple[str, ...]
    nothing_to_do: bool

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> "CleanupPlan":
        """Read the ``details`` of the ``plan_cleanup`` command's ``command_finished`` event."""
        return cls(slot=str(details.get("slot") or ""),
                   items=tuple(str(i) for i in details.get("items") or ()),
                   consequence=str(details.get("consequence") or ""),
                   blockers=tuple(str(b) for b in details.get("blockers") or ()),
                   nothing_to_do=bool(details.get("nothing_to_do")))


def _bullets(lines: tuple[str, ...], style: str = "") -> Table:
    """A bulleted list whose wrapped lines stay indented under their bullet."""
    table = Table.grid(padding=(0, 1))
    table.add_column(width=2, justify="right")
    table.add_column(ratio=1)
    for line in lines:
        table.add_row("•", Text(redact(line), style=style))
    return table


def plan_view(plan: CleanupPlan) -> RenderableType:
    """The plan as the operator reads it: what goes, what that means, who else is alive."""
    if plan.nothing_to_do:
        return Text(f"Nothing to clean up for slot {plan.slot}.")
    parts: list[RenderableType] = [Text(f"Replication slot {plan.slot}\n", style="bold"),
                                   _bullets(plan.items)]
    if plan.consequence:
        parts.append(Text(f"\nAfterwards: {redact(plan.consequence)}", style="bold"))
    if plan.blockers:
        parts.append(Text("\nOTHER PG2ICEBERG PROCESSES LOOK ALIVE; cleanup will be refused while "
                          "they run:", style="bold red"))
        parts.append(_bullets(plan.blockers, style="red"))
    return Group(*parts)


LOCKED = "Drop (type the name first)"  # the labels say the state, colour or not
UNLOCKED = "Drop them now"


class CleanupScreen(ModalScreen[str | None]):
    """Dismisses with the typed slot name on confirm, None on cancel."""

    AUTO_FOCUS = "#cancel"
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("pageup", "scroll_plan(-1)", "Scroll the plan up", show=False),
                Binding("pagedown", "scroll_plan(1)", "Scroll the plan down", show=False)]

    def __init__(self, plan: CleanupPlan):
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        """The dialog."""
        with Vertical(id="dialog") as dialog:
            dialog.border_title = "Clean up: drop what this pipeline created"
            with VerticalScroll(id="plan", can_focus=False):  # Tab goes Cancel → field
                yield Static(plan_view(self.plan))
            if not self.plan.nothing_to_do:
                yield Label(f"To confirm, Tab to the field and type the slot name ({self.plan.slot}):",
                            id="how-to-confirm")
                with Horizontal(id="field"):
                    yield Label("slot name › ")
                    yield Input(placeholder="type it here", id="slot-name", compact=True)
            with Horizontal(id="buttons"):
                yield Button("Cancel" if not self.plan.nothing_to_do else "Close", id="cancel",
                             variant="primary", compact=True)
                if not self.plan.nothing_to_do:
                    yield Button(LOCKED, id="confirm", variant="error", disabled=True, compact=True)

    def on_input_changed(self, event: Input.Changed) -> None:
        """The confirm button is enabled only while the slot name is typed exactly."""
        confirm = self.query_one("#confirm", Button)
        confirm.disabled = event.value != self.plan.slot
        confirm.label = LOCKED if confirm.disabled else UNLOCKED

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the field confirms when the name matches."""
        if event.value == self.plan.slot:
            self.dismiss(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Cancel or confirm."""
        if event.button.id == "confirm":
            self.dismiss(self.query_one("#slot-name", Input).value)
        else:
            self.dismiss(None)

    def action_scroll_plan(self, pages: int) -> None:
        """A long plan scrolls with page up / page down."""
        plan = self.query_one("#plan", VerticalScroll)
        plan.scroll_relative(y=pages * max(1, plan.size.height - 1))

    def action_cancel(self) -> None:
        """Escape cancels."""
        self.dismiss(None)

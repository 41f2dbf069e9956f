"""The console's panes: each renders a pure function of the status snapshot."""

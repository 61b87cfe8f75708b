"""``socklab-start ARGV...``: start one more app in this node's running supervisor.

Prints the app's ``{"event": "spawned", ...}`` line once it is started (a
``*-server`` once it is listening) and exits 0; exits 1 with the supervisor's
error (e.g. command not found), 2 when no supervisor answers.
"""

from socklab.nodes.supervisor import start_main as main

__all__ = ["main"]

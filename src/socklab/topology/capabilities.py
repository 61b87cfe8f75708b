"""Linux capabilities a node may ask for with ``cap_add`` (``NET_RAW``, ``CAP_NET_ADMIN``...).

``CAPABILITIES`` is the kernel's list in its own order (``linux/capability.h``: the name
at index N is capability number N), so a typo is caught by ``socklab validate`` with a
near name instead of Docker's error at ``up``. ``SYS_ADMIN`` (and ``ALL``) are
capabilities socklab never grants: nodes are never privileged.
"""

from __future__ import annotations

import difflib

CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
    "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
    "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip
NEVER = ("ALL", "SYS_ADMIN")


def known_capability(value: str) -> str:
    """``value`` when it names a capability (with or without ``CAP_``); else a ``ValueError``
    whose message suggests the near name (after `` — ``, the hint)."""
    name = value.removeprefix("CAP_")
    if name in CAPABILITIES or name == "ALL":
        return value
    close = difflib.get_close_matches(name, CAPABILITIES, n=1, cutoff=0.6)
    if not close:
        hint = "use a capability name such as NET_ADMIN or NET_RAW (see capabilities(7))"
    elif close[0] in NEVER:
        hint = f"did you mean {close[0]!r}? socklab never grants it: nodes are never privileged"
    else:
        hint = f"did you mean {close[0]!r}?"
    raise ValueError(f"unknown capability {value!r} — {hint}")

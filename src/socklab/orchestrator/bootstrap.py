"""A Debian rootfs for the node image's base, made by ``mmdebstrap`` from the host's apt.

The host's own apt sources for its release (one-line ``.list`` and deb822
``.sources`` files) and a few of its apt settings (proxies, release-date checks)
are handed to mmdebstrap, so the bootstrap needs no registry, only the mirror the
host already uses.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from socklab.errors import LabError

APT_SOURCES = Path("/etc/apt/sources.list")
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
#: Host apt settings worth keeping when mmdebstrap runs apt with its own config.
APT_PASSTHROUGH = (
    "Acquire::http::Proxy",
    "Acquire::https::Proxy",
    "Acquire::Check-Valid-Until",
    "Acquire::Check-Date",
)


def make_rootfs(
    mmdebstrap: str,
    target: Path,
    packages: list[str],
    dpkg_options: Path,
    say: Callable[[str], None],
    suite: str | None = None,
) -> None:
    """Write a Debian rootfs tarball of the host's release with these packages to ``target``
    (``dpkg_options``: a dpkg.cfg file, e.g. path excludes); progress lines go to ``say``.
    ``suite`` asks the host's mirrors for another release (``bullseye`` on a bookworm host)."""
    sources = target.with_name("host.sources")
    host = _host_codename()
    sources.write_text(_host_sources(host, suite or host))
    # the merged-usr hook installs usr-is-merged, a package of the host's release (bookworm
    # on), not of an older one
    argv = _mmdebstrap_argv(
        mmdebstrap,
        suite or host,
        sources,
        target,
        packages,
        dpkg_options,
        merged_usr_hook=suite in (None, host),
    )
    _run_mmdebstrap(argv, say)


def _mmdebstrap_argv(
    mmdebstrap: str,
    suite: str,
    sources: Path,
    target: Path,
    packages: list[str],
    dpkg_options: Path,
    merged_usr_hook: bool = True,
) -> list[str]:
    argv = [
        mmdebstrap,
        "--mode=root" if os.geteuid() == 0 else "--mode=unshare",
        "--variant=essential",
        "--format=tar",
        f"--include={','.join(packages)}",
        f"--dpkgopt={dpkg_options}",
        '--customize-hook=rm -rf "$1"/var/log/*.log "$1"/var/log/apt'
        ' "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old',
    ]
    merged_usr = Path("/usr/share/mmdebstrap/hooks/merged-usr")
    if merged_usr_hook and merged_usr.is_dir():  # else init-system-helpers drags in usrmerge and perl
        argv.append(f"--hook-dir={merged_usr}")
    argv += [f"--aptopt={opt}" for opt in _host_apt_options()]
    return [*argv, suite, str(target), str(sources)]


def _run_mmdebstrap(argv: list[str], say: Callable[[str], None]) -> None:
    tail: list[str] = []
    with subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.rstrip()
            tail = [*tail[-9:], line]
            if line.startswith("I: ") and "..." in line:
                say(f"mmdebstrap: {line[3:]}")
    if proc.returncode != 0:
        raise LabError(
            f"mmdebstrap failed (exit {proc.returncode}): "
            + next((t for t in reversed(tail) if t.startswith("E: ")), tail[-1] if tail else ""),
            "check that `apt-get update` works on this host (the image uses its apt sources)",
        )


def _host_codename() -> str:
    """The host's Debian suite, from /etc/os-release."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            fields[key] = value.strip().strip('"')
    codename = fields.get("VERSION_CODENAME", "")
    if not codename:
        raise LabError(
            "cannot tell this host's Debian release (no VERSION_CODENAME in /etc/os-release)",
            "bootstrap needs a Debian host; or use --method pull",
        )
    return codename


def _host_sources(codename: str, suite: str | None = None) -> str:
    """The host's apt entries for its own release (``<codename>`` and ``<codename>-*``),
    as one deb822 text; other repositories (third-party, other suites) are left out.
    With ``suite``, the same mirrors for that release (``<suite>``, ``<suite>-*``)."""
    entries: list[dict[str, str]] = []
    files = [APT_SOURCES] if APT_SOURCES.is_file() else []
    if APT_SOURCES_DIR.is_dir():
        files += sorted(p for p in APT_SOURCES_DIR.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        text = path.read_text(errors="replace")
        entries += _parse_deb822(text) if path.suffix == ".sources" else _parse_one_line(text)
    stanzas = []
    for entry in entries:
        suites = [s for s in entry.get("suites", "").split() if s == codename or s.startswith(f"{codename}-")]
        suites = [(suite or codename) + s.removeprefix(codename) for s in suites]
        if "deb" not in entry.get("types", "").split() or not suites:
            continue
        if entry.get("enabled", "yes").lower() == "no":
            continue
        lines = [
            "Types: deb",
            f"URIs: {entry['uris']}",
            f"Suites: {' '.join(suites)}",
            f"Components: {entry.get('components', 'main')}",
        ]
        lines += [f"{key.title()}: {entry[key]}" for key in ("signed-by", "trusted") if key in entry]
        stanzas.append("\n".join(lines))
    if not stanzas:
        raise LabError(
            f"no apt source for '{codename}' on this host",
            f"add one under {APT_SOURCES_DIR} (apt-get update must work)",
        )
    return "\n\n".join(stanzas) + "\n"


def _parse_deb822(text: str) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    for block in re.split(r"\n\s*\n", text):
        entry: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:  # continuation line (e.g. an inline key)
                entry[key] += "\n " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            entry[key] = value.strip()
        if "uris" in entry:
            entries.append(entry)
    return entries


def _parse_one_line(text: str) -> list[dict[str, str]]:
    entries = []
    for line in text.splitlines():
        m = re.match(r"\s*(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)", line)
        if not m:
            continue
        entry = {"types": m[1], "uris": m[3], "suites": m[4], "components": m[5].strip()}
        for opt in (m[2] or "").split():
            key, _, value = opt.partition("=")
            if key in ("signed-by", "trusted"):
                entry[key] = value.replace(",", " ")
        entries.append(entry)
    return entries


def _host_apt_options() -> list[str]:
    """The few host apt settings (proxies, release-date checks) mmdebstrap should keep."""
    try:
        dump = subprocess.run(
            ["apt-config", "dump"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.rstrip(";") for line in dump.splitlines() if line.split(" ", 1)[0] in APT_PASSTHROUGH]

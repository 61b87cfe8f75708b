"""The shipped labs (``labs/*.yml``): the course they make, and how a LAB argument is found.

Each topic of the lecture notes (the curriculum of the design) is a :class:`CourseTopic`;
a shipped lab says which one it teaches with its ``topic:`` key, and ``socklab labs``
lists the labs in the order of the course.
"""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from socklab.errors import LabError

LABS_DIR = Path(__file__).parent / "labs"
DEFAULT_LAB = "echo"
LOCAL_LAB = "socklab.yml"


@dataclass(frozen=True)
class CourseTopic:
    """One row of the curriculum: the ``topic:`` its labs carry and the notes' words for it."""

    topic: str
    notes: str


#: The curriculum, in the order of the notes (the table at the end of the design).
COURSE: tuple[CourseTopic, ...] = (
    CourseTopic(
        "ports and addresses", "socket = IP + port + protocol; 2^16 ports; a bound port can't be reopened"
    ),
    CourseTopic("iterative and concurrent servers", "client-server model; iterative vs concurrent server"),
    CourseTopic(
        "server and client steps",
        "server steps (create, bind, listen, loop) / client steps (create, resolve, send, wait, parse)",
    ),
    CourseTopic("communication domains", "domains PF_UNIX/PF_LOCAL, PF_INET, PF_INET6"),
    CourseTopic("socket types", "types STREAM, DGRAM, RAW, SEQPACKET, RDM"),
    CourseTopic("accept", "accept() returns a new socket + peer address"),
    CourseTopic("close and shutdown", "close() vs shutdown(SHUT_RD/WR/RDWR)"),
    CourseTopic("timeouts and blocking", "settimeout"),
    CourseTopic("sending and receiving", "send/recv, sendto/recvfrom, out-of-band data"),
    CourseTopic("sockets as files and pipes", "makefile, socketpair instead of pipes"),
    CourseTopic("local and remote names", "getsockname / getpeername"),
    CourseTopic("netstat", "netstat -a"),
    CourseTopic("socket options", "socket options: SO_REUSEADDR, TCP_NODELAY, getsockopt/setsockopt"),
    CourseTopic(
        "address conversion and byte order", "address conversion inet_pton/ntop/aton/ntoa, byte order"
    ),
    CourseTopic(
        "the resolver", "resolver: gethostbyname(_ex), gethostbyaddr, getaddrinfo, getfqdn, services"
    ),
    CourseTopic("errno", "errno table"),
)
TOPICS = [t.topic for t in COURSE]


@dataclass(frozen=True)
class ShippedLab:
    name: str
    path: Path
    topic: str
    description: str

    @property
    def summary(self) -> str:
        """The description's first sentence, cut at a word near 60 characters (a table's
        column; `socklab labs show NAME` has the whole)."""
        first = self.description.split(". ")[0].strip().rstrip(".")
        if len(first) <= 60:
            return first
        return first[:60].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def _read(path: Path) -> ShippedLab:
    with path.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    return ShippedLab(
        path.stem,
        path,
        str(doc.get("topic") or "").strip(),
        " ".join(str(doc.get("description", "")).split()),
    )


def shipped_labs() -> list[ShippedLab]:
    """Every lab shipped with socklab, in the order of the course (then by name)."""
    found = [_read(path) for path in LABS_DIR.glob("*.yml")]
    order = {topic: i for i, topic in enumerate(TOPICS)}
    return sorted(found, key=lambda lab: (order.get(lab.topic, len(order)), lab.name))


def shipped_lab(name: str) -> ShippedLab:
    """The shipped lab of that name, or a LabError naming the near ones."""
    path = LABS_DIR / f"{name}.yml"
    if "/" not in name and path.is_file():
        return _read(path)
    names = [lab.name for lab in shipped_labs()]
    close = difflib.get_close_matches(name, names, n=1)
    raise LabError(
        f"no shipped lab named '{name}'",
        f"did you mean '{close[0]}'?" if close else "`socklab labs` lists them: " + ", ".join(names),
    )


def copy_lab(name: str, folder: Path, force: bool = False) -> Path:
    """Copy a shipped lab's file into ``folder`` (made if missing) as ``NAME.yml``."""
    lab = shipped_lab(name)
    if folder.exists() and not folder.is_dir():
        raise LabError(f"{folder} is a file", "give a directory to copy the lab into")
    target = folder / lab.path.name
    if target.exists() and not force:
        raise LabError(f"{target} already exists", "give another DIR, or --force to overwrite it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lab.path, target)
    except OSError as exc:
        raise LabError(
            f"cannot copy lab '{name}' to {folder}: {exc.strerror or exc}", "give a DIR you can write to"
        ) from None
    return target


def find_lab_file(arg: str) -> Path | None:
    """A path as given, else the shipped lab of that name, else None."""
    path = Path(arg)
    if path.is_file():
        return path
    shipped = LABS_DIR / f"{arg}.yml"
    if "/" not in arg and shipped.is_file():
        return shipped
    return None


def default_lab_file() -> Path:
    """``./socklab.yml`` when present, else the shipped default lab."""
    local = Path(LOCAL_LAB)
    return local if local.is_file() else LABS_DIR / f"{DEFAULT_LAB}.yml"

"""The shipped labs (``labs/*.yml``) and how a command-line LAB argument is found."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

LABS_DIR = Path(__file__).parent / "labs"
DEFAULT_LAB = "echo"
LOCAL_LAB = "socklab.yml"


@dataclass(frozen=True)
class ShippedLab:
    name: str
    path: Path
    description: str


def shipped_labs() -> list[ShippedLab]:
    """Every lab shipped with socklab, by name."""
    out = []
    for path in sorted(LABS_DIR.glob("*.yml")):
        with path.open(encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
        out.append(ShippedLab(path.stem, path, str(doc.get("description", "")).strip()))
    return out


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

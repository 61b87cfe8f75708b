"""Link impairments as the topology and the ``fault`` commands write them.

``impair: {loss: 5%, delay: 40ms, jitter: 10ms, rate: 1mbit}`` on a network or on
one node's attachment to it; the same values are taken by ``socklab fault`` and by
``fault:`` scenario steps. Pure parsing: the values are kept in plain units (percent,
milliseconds, bits per second) and printed back in the form they are written.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema, model_validator

MAX_DELAY_MS = 60_000.0
RATE_UNITS = {
    "bit": 1,
    "kbit": 1_000,
    "mbit": 1_000_000,
    "gbit": 1_000_000_000,
    "bps": 8,
    "kbps": 8_000,
    "mbps": 8_000_000,
    "gbps": 8_000_000_000,
}
_TIME_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_percent(value: Any, what: str = "loss") -> float:
    """``5%``, ``5`` or ``0.5%`` -> 5.0 / 0.5; more than 0 and at most 100."""
    if isinstance(value, bool):
        raise ValueError(f"bad {what} {value!r} — give a percentage such as 5% or 30")
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*%?\s*", value)
        if not m:
            raise ValueError(f"bad {what} {value!r} — give a percentage such as 5% or 30")
        value = float(m.group(1))
    if not isinstance(value, (int, float)):
        raise ValueError(f"bad {what} {value!r} — give a percentage such as 5% or 30")
    pct = float(value)
    if not 0 < pct <= 100:
        raise ValueError(f"{what} {pct:g}% is out of range — give a percentage in 0..100 (more than 0)")
    return pct


def parse_ms(value: Any, what: str = "delay", *, allow_zero: bool = False) -> float:
    """``40ms``, ``1.5s``, ``250us`` or a number of milliseconds; at most 60 s."""
    if isinstance(value, bool):
        raise ValueError(f"bad {what} {value!r} — give a time such as 40ms or 1s")
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(us|ms|s)?\s*", value)
        if not m:
            raise ValueError(f"bad {what} {value!r} — give a time such as 40ms or 1s")
        value = float(m.group(1)) * _TIME_UNITS[m.group(2) or "ms"]
    if not isinstance(value, (int, float)):
        raise ValueError(f"bad {what} {value!r} — give a time such as 40ms or 1s")
    ms = float(value)
    if ms < 0 or (ms == 0 and not allow_zero):
        raise ValueError(f"{what} {ms:g}ms is not a duration — give a time more than 0, such as 40ms")
    if ms > MAX_DELAY_MS:
        raise ValueError(f"{what} {ms:g}ms is too long — give at most 60s")
    return ms


def parse_rate(value: Any) -> int:
    """``1mbit``, ``500kbit``, ``2mbps`` (bytes), or a number of bits per second -> bits per
    second; at least 8 kbit/s."""
    if isinstance(value, int) and not isinstance(value, bool):
        bps = value
    else:
        m = (
            re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]+)", value.strip().lower())
            if isinstance(value, str)
            else None
        )
        if m is None or m.group(2) not in RATE_UNITS:
            raise ValueError(
                f"bad rate {value!r} — give a number and a unit such as 1mbit, "
                "500kbit or 2mbps (units: " + ", ".join(RATE_UNITS) + ")"
            )
        bps = int(float(m.group(1)) * RATE_UNITS[m.group(2)])
    if bps < 8_000:
        raise ValueError(f"rate {value!r} is too slow — give at least 8kbit")
    return bps


def format_rate(bps: int) -> str:
    """Bits per second as tc writes them: ``1mbit``, ``500kbit``, ``1500bit``."""
    for unit, factor in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bps >= factor and bps % factor == 0:
            return f"{bps // factor}{unit}"
    return f"{bps}bit"


def format_ms(ms: float) -> str:
    return f"{ms / 1000:g}s" if ms >= 1000 and ms % 1000 == 0 else f"{ms:g}ms"


def _written(number: dict[str, Any], pattern: str) -> WithJsonSchema:
    """The JSON Schema of a value as a topology writes it: a number, or text (``5%``)."""
    return WithJsonSchema({"anyOf": [number, {"type": "string", "pattern": pattern}]})


_PERCENT = _written({"type": "number", "exclusiveMinimum": 0, "maximum": 100}, r"^\s*\d+(\.\d+)?\s*%?\s*$")
_TIME = _written(
    {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DELAY_MS}, r"^\s*\d+(\.\d+)?\s*(us|ms|s)?\s*$"
)
_RATE = _written({"type": "integer", "minimum": 8_000}, r"^\s*\d+(\.\d+)?\s*[A-Za-z]+\s*$")

Percent = Annotated[float, BeforeValidator(parse_percent), _PERCENT]
Corrupt = Annotated[float, BeforeValidator(lambda v: parse_percent(v, "corrupt")), _PERCENT]
Duplicate = Annotated[float, BeforeValidator(lambda v: parse_percent(v, "duplicate")), _PERCENT]
Milliseconds = Annotated[float, BeforeValidator(parse_ms), _TIME]
Jitter = Annotated[float, BeforeValidator(lambda v: parse_ms(v, "jitter")), _TIME]
Rate = Annotated[int, BeforeValidator(parse_rate), _RATE]


class Impairment(BaseModel):
    """What a link does to the packets a node sends on it: ``loss`` (percent), ``delay``
    and ``jitter`` (``40ms``), ``rate`` (``1mbit``), and where the kernel has netem,
    ``corrupt`` and ``duplicate`` (percent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    loss: Percent | None = None
    """Percent of the packets lost: 5% or 5."""
    delay: Milliseconds | None = None
    """Added delay: 40ms, 1s, or a number of milliseconds."""
    jitter: Jitter | None = None
    """± this much on the delay, uniformly."""
    rate: Rate | None = None
    """A rate limit: 1mbit, 500kbit, 2mbps (bytes)."""
    corrupt: Corrupt | None = None
    """Percent of the packets corrupted (needs the kernel's netem)."""
    duplicate: Duplicate | None = None
    """Percent of the packets duplicated (needs the kernel's netem)."""

    @model_validator(mode="after")
    def _jitter_needs_delay(self) -> Impairment:
        if self.jitter is not None and self.delay is None:
            raise ValueError("jitter needs a delay — add 'delay: 40ms' beside it")
        return self

    def merged(self, other: Impairment | None) -> Impairment:
        """This impairment with ``other``'s keys taking precedence."""
        if other is None:
            return self
        return Impairment.model_validate(
            {**self.model_dump(exclude_none=True), **other.model_dump(exclude_none=True)}
        )

    def describe(self) -> str:
        """``loss 5% delay 40ms jitter 10ms rate 1mbit``."""
        parts = []
        if self.loss is not None:
            parts.append(f"loss {self.loss:g}%")
        if self.delay is not None:
            parts.append(f"delay {format_ms(self.delay)}")
        if self.jitter is not None:
            parts.append(f"jitter {format_ms(self.jitter)}")
        if self.rate is not None:
            parts.append(f"rate {format_rate(self.rate)}")
        if self.corrupt is not None:
            parts.append(f"corrupt {self.corrupt:g}%")
        if self.duplicate is not None:
            parts.append(f"duplicate {self.duplicate:g}%")
        return " ".join(parts)

    @property
    def empty(self) -> bool:
        return not self.model_dump(exclude_none=True)

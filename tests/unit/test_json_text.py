"""The supervisor's JSON writer gives json.dumps's text exactly."""

from __future__ import annotations

import json
import random

import pytest

from socklab.nodes.json_text import dumps

VALUES = [
    {
        "event": "ready",
        "apps": ["tcp-server", "tcp-server#2"],
        "failed": [],
        "states": {"tcp-server": "listening"},
        "errors": {"x": "exited with code 1"},
    },
    [1, -3, 2.5, 1e-07, 1e21, 0.1, True, False, None, 12345678901234567890],
    'quote " backslash \\ newline \n tab \t nul \x00 unit \x1f del \x7f é ü 中 😀',
    {"nested": {"deeper": [{"argv": ["sh", "-c", "echo 'hi'"]}, ()]}},
    "",
    [],
    {},
]


@pytest.mark.parametrize("value", VALUES)
def test_as_json_dumps_writes_it(value: object) -> None:
    assert dumps(value) == json.dumps(value)


def test_any_text() -> None:
    rnd = random.Random(14)
    planes = [(0, 0x80), (0x80, 0x800), (0x800, 0xD800), (0xE000, 0x110000)]
    for _ in range(5000):
        text = "".join(chr(rnd.randrange(*rnd.choice(planes))) for _ in range(rnd.randrange(12)))
        assert dumps(text) == json.dumps(text)


def test_what_json_cannot_hold_is_refused() -> None:
    with pytest.raises(TypeError):
        dumps({"when": object()})

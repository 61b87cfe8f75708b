"""resolve: the resolver calls of the notes on localhost, 127.0.0.1 and ::1."""

from __future__ import annotations

import json
import socket

from .test_node_apps_support import run_app


def test_resolve_json_on_localhost() -> None:
    done = run_app("resolve", "localhost", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # one JSON object, nothing else on stdout
    assert report["query"] == "localhost" and report["is_address"] is False
    expected = socket.gethostbyname("localhost")
    assert report["gethostbyname"] == {"result": expected}
    entry = report["gethostbyname_ex"]["result"]
    assert set(entry) == {"name", "aliases", "addresses"} and expected in entry["addresses"]
    rows = report["getaddrinfo"]["result"]
    assert rows and all(row["type"] == "SOCK_STREAM" for row in rows)
    assert {row["family"] for row in rows} <= {"AF_INET", "AF_INET6"}
    assert report["getfqdn"] == socket.getfqdn("localhost")
    assert expected in report["addresses"]
    conversion = report["conversions"][expected]
    assert conversion["inet_pton"] == socket.inet_aton(expected).hex()
    assert conversion["inet_ntop"] == conversion["inet_ntoa"] == expected
    assert (
        report["byte_order"][0]
        == {
            "port": 7,
            "host_byte_order": "little",
            "htons": 1792,
            "htons_hex": "0x0700",
            "ntohs": 7,
            "wire_bytes": "0007",
        }
        or report["byte_order"][0]["host_byte_order"] == "big"
    )
    assert {"getservbyname", "getservbyport"} <= set(report["services"])


def test_resolve_address_reverse_and_all() -> None:
    done = run_app("resolve", "127.0.0.1", "--all", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["is_address"] is True and report["addresses"][0] == "127.0.0.1"
    reverse = report["gethostbyaddr"]["127.0.0.1"]
    assert "result" in reverse or reverse["errno"] == "HOST_NOT_FOUND"
    # --all asks getaddrinfo for every socket type
    types = {row["type"] for row in report["getaddrinfo"]["result"]}
    assert {"SOCK_STREAM", "SOCK_DGRAM"} <= types


def test_resolve_ipv6_address_conversions() -> None:
    report = json.loads(run_app("resolve", "::1", "--json").stdout)
    assert report["conversions"]["::1"] == {
        "family": "AF_INET6",
        "inet_pton": "0" * 31 + "1",
        "inet_ntop": "::1",
    }


def test_resolve_events_and_failure() -> None:
    done = run_app("resolve", "localhost")
    assert done.returncode == 0
    calls = [e["call"] for e in done.named("resolved")]
    assert calls[:4] == ["gethostbyname", "gethostbyname_ex", "getaddrinfo", "gethostbyaddr"]
    missing = run_app("resolve", "no-such-host.invalid")
    assert missing.returncode == 1
    error = missing.named("error")[0]
    assert error["errno"].startswith("EAI_")


def test_a_name_the_idna_codec_refuses_is_a_resolver_failure() -> None:
    # getfqdn("bad..name") raises UnicodeError (an empty label) where other names fall back
    done = run_app("resolve", "bad..name")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    error = done.named("error")[0]
    assert error["query"] == "bad..name" and "label empty" in error["message"]
    fqdn = [e for e in done.named("resolved") if e["call"] == "getfqdn"]
    assert fqdn[0]["answer"] == "bad..name"  # getfqdn's answer for a name it cannot look up
    as_json = run_app("resolve", "bad..name", "--json")
    assert as_json.returncode == 1, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["resolved"] is False and report["getfqdn"] == "bad..name"
    assert "error" in report["gethostbyname"]

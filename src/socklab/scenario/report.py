"""The run folder's reports: ``report.json``, ``junit.xml`` and ``report.html``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from socklab.scenario import html
from socklab.scenario.results import RunResult


def write_all(result: RunResult, folder: Path, junit_path: Path | None = None) -> None:
    (folder / "report.json").write_text(result.to_json())
    junit_xml = junit(result)
    (folder / "junit.xml").write_text(junit_xml)
    if junit_path is not None:
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        junit_path.write_text(junit_xml)
    (folder / "report.html").write_text(html.render(result))


def junit(result: RunResult) -> str:
    """One testcase per step, parallel children included; failures carry the step's message."""
    steps = result.all_steps()
    failures = sum(s.status == "failed" for s in steps)
    errors = sum(s.status == "error" for s in steps) + (result.error is not None)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": f"socklab.{result.lab}.{result.scenario}",
            "tests": str(len(steps) + (result.error is not None)),
            "failures": str(failures),
            "errors": str(errors),
            "time": f"{result.duration:.3f}",
        },
    )
    for step in steps:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"{result.lab}.{result.scenario}",
                "name": f"step {step.index} {step.title}",
                "time": f"{step.duration:.3f}",
            },
        )
        if step.status != "passed":
            tag = "failure" if step.status == "failed" else "error"
            ET.SubElement(case, tag, {"message": step.detail}).text = step.detail
        output = "\n".join(f"[{o.node}] exit {o.exit_code}\n{o.stdout}{o.stderr}" for o in step.outputs)
        if output:
            ET.SubElement(case, "system-out").text = output
    if result.error is not None:  # the run itself did not finish: CI must not see it green
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": f"{result.lab}.{result.scenario}", "name": "run", "time": f"{result.duration:.3f}"},
        )
        ET.SubElement(case, "error", {"message": result.error}).text = result.error
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"

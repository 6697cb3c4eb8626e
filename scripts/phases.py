#!/usr/bin/env python3
"""The phase table of `make test` (scripts/test.sh).

`phases.py junit FILE` prints a row per test binary of a nextest JUnit report (the time its tests
took, which overlap when they run in parallel, and how many ran and failed); `phases.py table FILE START_NS`
prints the phases that FILE records (name, milliseconds, exit code; test-binary rows start with two
spaces and add the counts), the total since START_NS, and a closing line `tests: N passed, N failed`.
"""
import sys
import time
import xml.etree.ElementTree as ET


def junit(path):
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        tests = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        secs = sum(float(case.get("time", 0)) for case in suite.iter("testcase"))
        name = f"  {suite.get('name')} ({tests} tests, {failed} failed)"
        print(f"{name}\t{round(secs * 1000)}\t{1 if failed else 0}\t{tests}\t{failed}")


def table(path, start_ns):
    rows = [line.rstrip("\n").split("\t") for line in open(path, encoding="utf-8") if line.strip()]
    total = (time.time_ns() - int(start_ns)) / 1e9
    width = max([len(r[0]) for r in rows] + [24])
    print()
    print("make test: how long each phase took")
    print(f"  {'phase':<{width}}  {'seconds':>8}  result")
    tests = failed = 0
    for name, ms, rc, *counts in rows:
        if counts:
            tests += int(counts[0])
            failed += int(counts[1])
        sub = name.startswith("  ")
        secs = f"({int(ms) / 1000:.1f})" if sub else f"{int(ms) / 1000:.1f}"
        result = ("failed" if rc != "0" else "ok") if not sub else ("failed" if rc != "0" else "")
        print(f"  {name:<{width}}  {secs:>8}  {result}")
    print(f"  {'total':<{width}}  {total:>8.1f}  ({total / 60:.1f} min)")
    print("  (a test binary's figure is the sum of its tests' times; they run in parallel)")
    print(f"tests: {tests - failed} passed, {failed} failed")


if __name__ == "__main__":
    if sys.argv[1:2] == ["junit"] and len(sys.argv) == 3:
        junit(sys.argv[2])
    elif sys.argv[1:2] == ["table"] and len(sys.argv) == 4:
        table(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: phases.py junit FILE | phases.py table FILE START_NS")

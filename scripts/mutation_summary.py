"""Survivors per module from mutmut's results: killed, survived, timeouts and the survivors' names."""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict

out = subprocess.run([".venv/bin/mutmut", "results", "--all", "true"], capture_output=True, text=True).stdout
counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
survivors: dict[str, list[str]] = defaultdict(list)
for line in out.splitlines():
    m = re.match(r"\s*([\w.]+)\.x[_\w]*__mutmut_\d+: (.+)$", line.strip())
    if not m:
        continue
    module, status = m.group(1), m.group(2).strip()
    counts[module][status] += 1
    if status == "survived":
        survivors[module].append(line.strip().split(":")[0])
for module in sorted(counts):
    c = counts[module]
    executed = sum(v for k, v in c.items() if k not in ("not checked", "skipped", "no tests"))
    if not executed and not c["no tests"]:
        continue  # not run this time
    share = c["survived"] / executed if executed else 0.0
    print(f"{module:55} executed {executed:4}  killed {c['killed']:4}  survived {c['survived']:4} ({share:.0%})  "
          f"no tests {c['no tests']:3}  timeout {c['timeout']:3}")

#!/usr/bin/env python3
"""Run a program and require exit status 0 and every given regex in its output.

  run_expect.py EXE REGEX...
"""
import re
import subprocess
import sys

proc = subprocess.run([sys.argv[1]], capture_output=True, text=True, timeout=120)
sys.stdout.write(proc.stdout)
sys.stderr.write(proc.stderr)
missing = [p for p in sys.argv[2:] if not re.search(p, proc.stdout, re.M)]
for p in missing:
    print(f"run_expect: output lacks /{p}/", file=sys.stderr)
sys.exit(1 if proc.returncode or missing else 0)

#!/usr/bin/env python3
"""Run an MPI job and check how it ends: exit status and output.

  run_mpi.py ok|fail COMMAND... -- REGEX...

'ok' requires exit status 0, 'fail' a non-zero one; every REGEX must match the
job's output (stdout and stderr together). A job still running after 25 s is
killed and counts as hung: a failure on one rank must end every rank."""
import os
import re
import signal
import subprocess
import sys

want = sys.argv[1]
sep = sys.argv.index('--')
cmd, patterns = sys.argv[2:sep], sys.argv[sep + 1:]
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
try:
    out, _ = proc.communicate(timeout=25)
except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    sys.stdout.write(out)
    print("run_mpi: the job hung (killed after 25 s)")
    sys.exit(1)
sys.stdout.write(out)
ok = (proc.returncode == 0) == (want == 'ok')
if not ok:
    print(f"run_mpi: exit status {proc.returncode}, expected {'0' if want == 'ok' else 'non-zero'}")
missing = [p for p in patterns if not re.search(p, out, re.M)]
for p in missing:
    print(f"run_mpi: output lacks /{p}/")
sys.exit(0 if ok and not missing else 1)

"""Runs a command that prints one JSON object as its last stdout line, and prints that object
with the command's peak resident memory (`peak_rss_bytes`, from the kernel's accounting of the
child process) and wall time added. Used by scripts/bench for `catgan bench`.

    python3 bench/rss.py -- COMMAND [ARGS...]
"""

import json
import os
import subprocess
import sys
import time


def main():
    command = sys.argv[2:] if sys.argv[1:2] == ["--"] else sys.argv[1:]
    if not command:
        sys.exit(__doc__)
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE)
    output = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    lines = [line for line in output.splitlines() if line.strip().startswith("{")]
    if code != 0 or not lines:
        sys.exit(f"{' '.join(command)}: exit code {code}, output: {output.strip()[-500:]!r}")
    result = json.loads(lines[-1])
    # ru_maxrss is in KiB on Linux.
    result.update(peak_rss_bytes=usage.ru_maxrss * 1024, wall_seconds=round(seconds, 1),
                  command=" ".join(command))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""The native `tracejoin` command (src/bin/tracejoin.rs) for the tests: `TRACEJOIN_CLI` when set,
else built once per session with cargo, which rebuilds only what changed."""

import functools
import json
import os
import subprocess
from pathlib import Path

from tracejoin_tools.common import ROOT


@functools.cache
def binary():
    given = os.environ.get("TRACEJOIN_CLI")
    if given:
        return given
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "tracejoin"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "release" / "tracejoin")


def run(*args, stdin=b""):
    """The command's exit status, stdout and stderr (text)."""
    if isinstance(stdin, str):
        stdin = stdin.encode()
    done = subprocess.run([binary(), *args], input=stdin, capture_output=True, timeout=60)
    return done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")


def loader_accepts(config):
    """The filter's loader verdict on `config` (a JSON value, or the bytes/text as written)."""
    text = config if isinstance(config, (str, bytes)) else json.dumps(config)
    code, _, err = run("check-config", stdin=text)
    assert code in (0, 1), err
    return code == 0


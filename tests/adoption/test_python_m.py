"""`python -m hacc` is the `hacc` console script: the same commands, output and exit codes."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sysconfig.get_path("scripts")) / "hacc"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    # outside the checkout, so only the installed package can answer
    return subprocess.run(list(args), cwd="/", capture_output=True, text=True, timeout=120, check=False)


def test_python_m_hacc_is_the_console_script() -> None:
    for args in (["check", str(ROOT / "sites/prod.yaml")], ["check", str(ROOT / "README.md")], ["nonsense"]):
        module = _run(sys.executable, "-m", "hacc", *args)
        script = _run(str(CONSOLE_SCRIPT), *args)
        assert (module.returncode, module.stdout) == (script.returncode, script.stdout), args
        # click names the program as it was called: only the usage line may differ
        assert module.stderr.replace("python -m hacc", "hacc") == script.stderr, args
    assert _run(sys.executable, "-m", "hacc", "check", str(ROOT / "sites/prod.yaml")).returncode == 0
    assert _run(sys.executable, "-m", "hacc", "nonsense").returncode == 2
    usage = _run(sys.executable, "-m", "hacc", "-h")
    assert usage.returncode == 0 and usage.stdout.startswith("Usage: python -m hacc [OPTIONS] COMMAND")
    for command in ("build", "check", "import", "run", "schema"):
        assert f"\n  {command} " in usage.stdout, command

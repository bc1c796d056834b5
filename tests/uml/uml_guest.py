"""Run a command inside a user-mode-linux guest: a real Linux 6.1 kernel with IPVS, as a normal process.

This machine's kernel has no IPVS; Debian's `user-mode-linux` package has one (modules under
/usr/lib/uml/modules/<ver>/). The guest boots with the host filesystem as its root (hostfs), so it runs
the same python interpreter, the same editable install and the same working tree. Everything the
guest mounts (/proc, /sys, /run, /dev/shm, /dev/pts) is its own: `ip netns add` inside the guest writes
to the guest's /run, never the host's.

    result = run_in_uml([sys.executable, "-m", "pytest", "-q", "tests/uml/guest_tests/guest_x.py"], timeout=240)
    result.returncode, result.output, result.console, result.elapsed

Facts measured here: boot to init ~1.5 s; system calls are 15-40x slower inside (process start ~80 ms,
`import pyroute2` ~1.3 s), so callers run one pytest session per boot. The command's output is read
from a file after the guest exits (the console is for kernel messages only).

Clean-up is by PID: linux.uml forks helper processes (one per guest address space), all in the process
group of the first one, which we start in a new session; we SIGKILL that group and wait for it to
empty, then delete the temporary directory that holds the init script, the module symlink farm and
the umid directory (uml_dir). This also runs on timeout and on KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

UML_BINARY = Path("/usr/bin/linux.uml")
UML_MODULES = Path("/usr/lib/uml/modules")
MODPROBE = Path("/usr/sbin/modprobe")

# Loaded at boot. IPVS schedulers are also loaded on demand by the guest kernel (through the modprobe
# wrapper below); loading them up front keeps the first `add service` fast and makes a missing one
# visible in modprobe.log. `twos` is deliberately absent: this kernel is built without it, which the
# tests use to check how a missing scheduler is reported.
GUEST_MODULES = (
    "ipv6",
    "ip_vs",
    *(f"ip_vs_{s}" for s in ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf")),
    "veth",
    "bridge",
    "ipip",
)

# Environment the guest command sees (the guest's init starts with an empty one).
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHASHSEED")


@dataclass(frozen=True)
class GuestResult:
    returncode: int | None  # None: the guest never reported one (host-side timeout, kernel panic)
    output: str  # the command's stdout and stderr, interleaved
    console: str  # kernel console and init-script messages
    elapsed: float  # seconds from spawning linux.uml to its exit
    timed_out: bool

    def describe(self) -> str:
        return (
            f"returncode={self.returncode} timed_out={self.timed_out} elapsed={self.elapsed:.1f}s\n"
            f"--- output ---\n{self.output}\n--- console ---\n{self.console}"
        )


def uml_kernel_version() -> str | None:
    """The UML kernel's module directory name (e.g. "6.1.176"), None if the package is not installed."""
    if not UML_MODULES.is_dir():
        return None
    versions = sorted(p.name for p in UML_MODULES.iterdir() if (p / "modules.dep").exists())
    return versions[-1] if versions else None


def missing_requirements() -> list[str]:
    """What this machine lacks to boot a guest (empty: all there). The CI installs all of it."""
    missing = []
    if platform.machine() != "x86_64":
        missing.append(f"user-mode-linux here is x86_64 only (machine is {platform.machine()})")
    if not UML_BINARY.exists():
        missing.append(f"{UML_BINARY} (apt-get install user-mode-linux)")
    if uml_kernel_version() is None:
        missing.append(f"{UML_MODULES}/<version>/modules.dep (apt-get install user-mode-linux)")
    if not MODPROBE.exists():
        missing.append(f"{MODPROBE} (apt-get install kmod)")
    if shutil.which("ipvsadm") is None:
        missing.append("ipvsadm (apt-get install ipvsadm)")
    return missing


def _init_script(work: Path, argv: list[str], cwd: Path, env: dict[str, str], inner_timeout: float) -> str:
    version = uml_kernel_version()
    q = shlex.quote
    env_words = " ".join(q(f"{k}={v}") for k, v in sorted(env.items()))
    modules = " ".join(GUEST_MODULES)
    # The guest shares the host's filesystem, so every mount below is on top of a host directory *in the
    # guest's view only*. tmpfs on /run keeps `ip netns add` (which writes /run/netns) away from the host.
    return f"""#!/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
exec >>{q(str(work / "init.log"))} 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /dev/shm /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t devpts devpts /dev/pts
# The kernel runs /proc/sys/kernel/modprobe for on-demand modules (an IPVS scheduler named in a new
# service); the host's /lib/modules holds no UML modules, so point it at our symlink farm.
echo {q(str(work / "modprobe.sh"))} > /proc/sys/kernel/modprobe
{q(str(MODPROBE))} -d {q(str(work / "modroot"))} -a {modules} || echo "modprobe failed: $?"
ip link set lo up
echo "init: kernel {version} ready"
cd {q(str(cwd))} && env -i {env_words} timeout -k 5 {inner_timeout:.0f} {" ".join(q(a) for a in argv)} \\
    >{q(str(work / "output.txt"))} 2>&1
echo $? > {q(str(work / "rc.tmp"))}
mv {q(str(work / "rc.tmp"))} {q(str(work / "rc"))}
sync
echo o > /proc/sysrq-trigger
sleep 10
"""


def _kill_group(pgid: int, deadline: float) -> None:
    """SIGKILL every process of the guest's process group and wait (bounded) until none is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def run_in_uml(
    argv: list[str],
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    mem_mb: int = 512,
) -> GuestResult:
    """Boot a guest, run argv in cwd (default: ours) with HACC_IN_UML=1, power off; always clean up.

    `timeout` bounds the whole guest lifetime; the command itself gets `timeout - 15` seconds (at least
    5) through timeout(1) inside the guest, so a hung command still leaves its output behind.
    """
    missing = missing_requirements()
    if missing:
        raise RuntimeError("cannot boot user-mode-linux: missing " + "; ".join(missing))
    version = uml_kernel_version()
    assert version is not None
    work = Path(tempfile.mkdtemp(prefix="hacc-uml-"))
    proc: subprocess.Popen[bytes] | None = None
    start = time.monotonic()
    timed_out = False
    try:
        os.chmod(work, 0o755)
        modroot = work / "modroot" / "lib" / "modules"
        modroot.mkdir(parents=True)
        (modroot / version).symlink_to(UML_MODULES / version)
        wrapper = work / "modprobe.sh"
        wrapper.write_text(f'#!/bin/sh\nexec {MODPROBE} -d {shlex.quote(str(work / "modroot"))} "$@"\n')
        wrapper.chmod(0o755)
        guest_env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        guest_env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        guest_env["PATH"] = f"{Path(sys.executable).parent}:{guest_env['PATH']}"
        guest_env.update({"HACC_IN_UML": "1", "TERM": "dumb", "PYTHONDONTWRITEBYTECODE": "1"})
        guest_env.update(env or {})
        inner = max(5.0, timeout - 15)
        init = work / "init.sh"
        init.write_text(_init_script(work, argv, (cwd or Path.cwd()).resolve(), guest_env, inner))
        init.chmod(0o755)
        (work / "uml").mkdir()
        umid = f"hacc{os.getpid()}x{work.name[-6:]}"
        cmd = [
            str(UML_BINARY),
            f"mem={mem_mb}M",
            f"umid={umid}",
            f"uml_dir={work / 'uml'}",
            "root=/dev/root",
            "rootfstype=hostfs",
            "rootflags=/",
            "rw",
            f"init={init}",
            "con0=null,fd:1",
            "con=null",
            "quiet",
        ]
        with (work / "console.log").open("wb") as console:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=console, start_new_session=True
            )
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
        elapsed = time.monotonic() - start
        rc_file = work / "rc"
        rc_text = rc_file.read_text().strip() if rc_file.exists() else ""
        returncode = int(rc_text) if rc_text.lstrip("-").isdigit() else None
        output = (work / "output.txt").read_text(errors="replace") if (work / "output.txt").exists() else ""
        console_text = (work / "console.log").read_text(errors="replace")
        if (work / "init.log").exists():
            console_text += "\n--- init ---\n" + (work / "init.log").read_text(errors="replace")
        return GuestResult(returncode, output, console_text, elapsed, timed_out)
    finally:
        if proc is not None:
            _kill_group(proc.pid, time.monotonic() + 10)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        shutil.rmtree(work, ignore_errors=True)

"""The built wheel installs hacc.compiler and hacc.runtime (never bare `compiler`/`runtime`) with every
subpackage and the templates: a package missing from pyproject's list would only fail after install."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from compiler_testlib import ROOT


def test_wheel_contains_every_package_and_template(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("hacc-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names if not n.startswith("hacc-")}
    assert tops == {"hacc"}, tops
    # `python -m hacc`; `hacc` itself stays a namespace package (no __init__.py)
    assert "hacc/__main__.py" in names and "hacc/__init__.py" not in names
    for src_root, pkg in (("compiler", "hacc/compiler"), ("runtime", "hacc/runtime")):
        for py in (ROOT / src_root).rglob("*.py"):
            if "__pycache__" in py.parts:
                continue
            rel = py.relative_to(ROOT / src_root).as_posix()
            assert f"{pkg}/{rel}" in names, f"{pkg}/{rel} missing from the wheel: list its package in pyproject"
    for tpl in (ROOT / "compiler" / "templates").glob("*.j2"):
        assert f"hacc/compiler/templates/{tpl.name}" in names
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "hacc = hacc.console:main" in entry  # `hacc run` without click, the rest through hacc.compiler.cli
    assert "hacc/console.py" in names
    # the site schema ships as data (editors of sites outside a checkout point at it), identical to schemas/
    assert (
        zipfile.ZipFile(wheel).read("hacc/schemas/site.schema.json") == (ROOT / "schemas/site.schema.json").read_bytes()
    )
    assert any(n.endswith(".dist-info/LICENSE") for n in names), "LICENSE missing from the wheel"
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Classifier: License :: OSI Approved :: Apache Software License" in metadata
    # no invented or placeholder URL: hacc has no public home yet (see pyproject)
    headers = metadata.split("\n\n", 1)[0].splitlines()  # the long description (README) follows a blank line
    assert not [h for h in headers if h.startswith(("Project-URL:", "Home-page:"))], headers
    assert "Requires-Python: >=3.11" in metadata

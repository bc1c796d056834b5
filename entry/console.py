"""The `hacc` console script (and `python -m hacc`).

`hacc run ...` (a node's daemon, and its `--config-test`) goes straight to the runtime's own parser,
hacc.runtime.runcmd: click and the compiler are never imported into the long-lived process, nor into
a config test. Every other command is the click group in hacc.compiler.cli.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["run"]:
        from hacc.runtime.runcmd import main as run

        sys.exit(run(sys.argv[2:]))
    from hacc.compiler.cli import main as cli

    cli()

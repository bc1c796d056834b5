"""`python -m hacc.compiler` is `hacc`."""

from hacc.compiler.cli import main

main()

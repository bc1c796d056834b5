"""`python -m hacc` is the `hacc` console script (the directory is mapped to the `hacc` namespace package,
which holds only this module and console.py: hacc.compiler and hacc.runtime are mapped from their own
directories)."""

from hacc.console import main

main()

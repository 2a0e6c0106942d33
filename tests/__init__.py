"""The stack tests written in Python, a package so that one suite imports another's helpers
as a module: run each from the repository root, e.g. `python3 -m tests.ha.run`."""

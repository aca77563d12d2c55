"""How the alert checks end: each error on stderr, or one summary line when there is none."""

import sys


def verdict(prog, errors, summary):
    """Prints errors (or summary) prefixed with prog; returns the exit status, 1 on any error."""
    for e in errors:
        print(f"{prog}:", e, file=sys.stderr)
    if errors:
        return 1
    print(f"{prog}: {summary}")
    return 0

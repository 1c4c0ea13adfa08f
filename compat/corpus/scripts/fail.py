"""Writes to stderr (merged into the output) and fails."""

import sys

print("about to fail", flush=True)
print("failure on stderr", file=sys.stderr, flush=True)
sys.exit(2)

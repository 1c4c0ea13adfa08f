"""Prints three lines, waits for the file ``go`` beside it (a corpus step touches it), exits 3."""

import os
import sys
import time

print("line 1")
print("line 2")
print("line 3", flush=True)
deadline = time.monotonic() + 25
while not os.path.exists("go") and time.monotonic() < deadline:
    time.sleep(0.02)
if os.path.exists("go"):
    os.remove("go")
print("after the gate", flush=True)
sys.exit(3)

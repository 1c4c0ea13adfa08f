"""Non-ASCII and invalid UTF-8 output, then waits for ``go``."""

import os
import sys
import time

sys.stdout.buffer.write("caf\u00e9 \u2713\n".encode())
sys.stdout.buffer.write(b"bad \xff\xfe bytes\n")
sys.stdout.buffer.write(b'<script>"quotes"</script>\n')
sys.stdout.flush()
deadline = time.monotonic() + 25
while not os.path.exists("go") and time.monotonic() < deadline:
    time.sleep(0.02)
if os.path.exists("go"):
    os.remove("go")

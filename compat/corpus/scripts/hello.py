"""Says hello and ends."""

print("hello from a job")

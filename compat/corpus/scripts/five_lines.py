"""Five lines and the end: more than line_num (3), all printed before any poll."""

for i in range(1, 6):
    print(f"line {i}")

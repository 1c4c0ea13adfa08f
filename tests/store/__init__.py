"""The server's metrics core: batches at the door (hostpulse/samples.py) and the series
store behind it (hostpulse/series/), on real SQLite files."""

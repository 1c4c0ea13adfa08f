"""Benchmarks of hostpulse: the Flask version against the async port, as ratios (``make bench``).

``python -m bench`` starts every server at once, drives them from a separate load process
(``wrk`` when installed, else :mod:`bench.load`), alternates between them, and prints one
table per workload with medians of several rounds and ratios against Flask on gunicorn.
"""

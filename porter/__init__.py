"""hostpulse-port: port a Flask project to Quart with libcst, then prove the port with the compat suite."""

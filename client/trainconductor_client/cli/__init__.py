"""`tcctl`: Train Conductor from a terminal."""

"""What both Train Conductor services share; imports no service."""

__version__ = "0.1.0"

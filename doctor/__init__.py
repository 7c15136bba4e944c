"""shipyard-doctor: diagnose the Docker host problems that break a Shipyard install."""

__version__ = "0.1.0"

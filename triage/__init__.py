"""The `triage` entry package: the command line that wires training, batch, store and service."""

"""Built-in fixes. Each module holds one fix, registered by entry point (none yet)."""

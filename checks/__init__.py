"""Built-in checks. Each module holds one read-only check, registered by entry point."""

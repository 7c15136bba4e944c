"""A plugin module that cannot be imported, to prove the run goes on without it."""

import module_that_does_not_exist  # noqa: F401

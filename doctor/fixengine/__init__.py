"""The fix engine: plans, steps, the journal with backups and undo, and restarts.

Fixes (``fixes/``) describe what to change as a
:class:`shipyard_doctor.fixing.Plan`; only this package applies it, with a backup
before and a verification after. It may import the host knowledge (``host/``) and the
core (errors, model, config), never the CLI or the renderers, and never prints.
"""

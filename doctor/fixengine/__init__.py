"""The fix engine: plans, steps, the journal with backups and undo, and restarts.

Fixes (``fixes/``) describe what to change as a
:class:`shipyard_doctor.fixing.Plan`; only this package applies it, with a backup
before and a verification after; :mod:`.containers` has the steps that remove or stop
a container, for any fix that needs one. It may import the host knowledge
(``host/``) and the core (errors, model, config), never the CLI or the renderers, and
never prints.
"""

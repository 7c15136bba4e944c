"""Knowledge of the host: what is running, configured and reachable on the machine.

:mod:`.gateway` holds :class:`~shipyard_doctor.host.gateway.Host`, the one gateway
through which checks, fixes, deploy and report reach docker, psutil and netifaces;
:mod:`.facts` remembers each fact per function and arguments and says why one could
not be read (``Unavailable``); the other modules read and parse one kind of host fact
each, and build the typed evidence a check hands its fix. Nothing here writes to the
machine, prints, or imports the CLI, the runner, the renderers or the fix engine.
"""

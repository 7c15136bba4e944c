"""Deploy, inspect and remove a Shipyard stack: the doctor's second job.

The stack's containers are data (``stacks/*.toml``); this package turns them into a
plan (:mod:`.plan`), checks the host first (:mod:`.preflight`), then applies the plan
as one transaction (:mod:`.apply`): in dependency order, each service awaited until
it answers, and on any failure or signal everything this run created is removed
again. :mod:`.status` reads and removes deployments. Nothing here prints: progress
goes to a :class:`~.events.Reporter`, results are dataclasses that
``render/deploy.py`` shows. It takes typed options (:mod:`.options`), never argparse.
"""

"""`shipyard-doctor report`: a support bundle for a ticket or a GitHub issue.

Public API: :class:`~.options.ReportOptions` and :class:`~.formats.Format` (what the
user asked for), :func:`~.flags.add_parser`, :func:`~.flags.options_from_args` and
:func:`~.command.run_report` (the CLI's three calls), :data:`~.collectors.COLLECTORS`
(what is collected), :class:`~.redact.Redactor` and :class:`~.pseudonyms.Pseudonymizer`
(privacy), :func:`~.document.build` (the one document every format is rendered from),
:func:`~.markdown.render_markdown`, and ``report.schema.json`` (the JSON format).

May import the engine (registry, runner, model), ``host/``, ``stacks`` and
``config``; never imported by them. It reads the host and never changes it; it
writes only the report files the user asked for, and uploads nothing.
"""

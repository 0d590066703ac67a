"""Notifications: tell the operator about events on channels they chose (Apprise URLs).

Layers, one job each: ``settings`` parses ``[notifications]`` (no Apprise, no secrets read),
``message`` renders an event, ``outbox`` keeps a persistent queue per channel, ``deliver``
is the ``EventSink`` plus the deadline-bound ``flush``, ``send`` is the Apprise adapter run as
a short child process, ``commands`` are what ``psquadlet notify`` runs.

Wiring (what the watcher does): ``notifier = commands.build(settings, state_dir, log)``; pass
it (e.g. in a ``Fanout`` with the metrics sink) as the pass's ``EventSink``; call
``notifier.flush()`` once after each pass. Importing this package imports nothing heavy.
"""

"""The demo: an order platform whose sagas run over four topics, seeded history and a live producer.

Events are CloudEvents in binary mode (``ce_*`` headers, JSON values) with a ``correlation_id`` and
a W3C ``traceparent`` header; the key is the order id. Five consumer groups are left at telling
positions (up to date, lagging, stalled, partial). A scenario is planned first, as a list of
:class:`~workbench.demo.scenario.Step` with times relative to "now", then merged by time and published in batches; the same
seed gives the same events. Only the contract is used: the connection is given to us.

The parts: the scenario, its data and how its sagas are planned (:mod:`~workbench.demo.scenario`,
pure); its events on the wire, the topics and the group offsets (:mod:`~workbench.demo.wire`);
seeding the history and summing it up (:mod:`~workbench.demo.seeding`); the live producer
(:mod:`~workbench.demo.live`).
"""

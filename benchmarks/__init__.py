"""chatcore's benchmarks: a load generator on the client SDK, peers, reports with plots.

Layout: ``system`` holds what touches the machine (CPU pinning, file limits, RSS and
CPU time from /proc); ``targets`` starts a server under test in its own process
(chatcore, or a peer from ``peers/``); ``loadgen`` is a load generator process and
``drivers`` its clients; ``histogram`` the HDR latency histograms they send back;
``fleet`` runs a target and its load generators from the parent and shows progress;
``scenarios/`` holds one module per scenario; ``profiling`` samples a target with
py-spy; ``results`` is the JSON a run writes; ``report`` and ``plots`` render the
Markdown report and its PNGs; ``runner`` ties them together for ``chatcore bench``.
"""

"""The fault suite: the real ``chatcore`` processes on our own Redis and Kafka, one fault at a time.

Layout: ``ledger`` holds the pure accounting (what senders were told against what the
store holds); ``stack`` starts the services and the processes and reads the store;
``proxy`` is a TCP relay a scenario can cut; ``scenarios`` the scenarios themselves;
``report`` the Markdown table; ``__main__`` the one command,
``python -m benchmarks.faults`` (see docs/reliability.md).
"""

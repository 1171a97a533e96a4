from chatcore.gateway.backlog import UnreadBacklog


def test_fires_once_the_bytes_stayed_above_the_limit_for_the_timeout() -> None:
    rule = UnreadBacklog(max_bytes=100, timeout_s=10.0)
    assert not rule.observe(101, now=0.0)
    assert not rule.observe(5000, now=9.9)
    assert rule.observe(101, now=10.0)


def test_dropping_to_the_limit_resets_the_clock() -> None:
    rule = UnreadBacklog(max_bytes=100, timeout_s=10.0)
    assert not rule.observe(500, now=0.0)
    assert not rule.observe(100, now=5.0)  # at the limit is not above it
    assert not rule.observe(500, now=9.0)
    assert not rule.observe(500, now=18.9)
    assert rule.observe(500, now=19.0)


def test_no_limit_never_fires() -> None:
    rule = UnreadBacklog(max_bytes=-1, timeout_s=0.0)
    assert not rule.observe(10**12, now=0.0)
    assert not rule.observe(10**12, now=1e9)

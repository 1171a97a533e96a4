from __future__ import annotations

from pathlib import Path

import pytest

from chatcore.config import ProductionConfig
from chatcore.errors import InvalidRequest


def test_defaults_point_at_loopback() -> None:
    config = ProductionConfig.load(env={})
    assert config.kafka_bootstrap == "127.0.0.1:9092"
    assert config.cassandra_hosts == ("127.0.0.1:9042",)
    assert config.redis_url.startswith("redis://127.0.0.1:6379")


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "chatcore.toml"
    path.write_text(
        '[production]\nkafka_bootstrap = "k1:9092"\ncassandra_hosts = ["c1:9042", "c2:9042"]\n'
        'partitions = 32\ncassandra_replication = { class = "NetworkTopologyStrategy", dc1 = 3 }\n'
    )
    config = ProductionConfig.load(path, env={"CHATCORE_KAFKA_BOOTSTRAP": "k9:9092"})
    assert config.kafka_bootstrap == "k9:9092"
    assert config.cassandra_hosts == ("c1:9042", "c2:9042")
    assert config.partitions == 32
    assert config.cassandra_replication["dc1"] == 3
    env = {"CHATCORE_CASSANDRA_HOSTS": "a:1, b:2", "CHATCORE_PARTITIONS": "8"}
    config = ProductionConfig.load(path, env=env)
    assert config.cassandra_hosts == ("a:1", "b:2")
    assert config.partitions == 8


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ("[production]\nkafka = 1\n", {}),
        ("[production\n", {}),
        ("", {"CHATCORE_PARTITIONS": "many"}),
        ("", {"CHATCORE_PARTITIONS": "0"}),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, text: str, env: dict[str, str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(InvalidRequest):
        ProductionConfig.load(path, env=env)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest):
        ProductionConfig.load(tmp_path / "nope.toml", env={})


def test_every_scalar_setting_has_an_environment_variable() -> None:
    env = {
        "CHATCORE_PRESENCE_TTL_S": "3",
        "CHATCORE_HEARTBEAT_S": "1.5",
        "CHATCORE_REDIS_PREFIX": "x:",
        "CHATCORE_TOPIC_PREFIX": "t.",
        "CHATCORE_CASSANDRA_KEYSPACE": "ks",
        "CHATCORE_REDIS_URL": "redis://r:1/0",
    }
    config = ProductionConfig.load(env=env)
    assert (config.presence_ttl_s, config.heartbeat_s) == (3.0, 1.5)
    assert (config.redis_prefix, config.topic_prefix) == ("x:", "t.")
    assert (config.cassandra_keyspace, config.redis_url) == ("ks", "redis://r:1/0")
    with pytest.raises(InvalidRequest):
        ProductionConfig.load(env={"CHATCORE_HEARTBEAT_S": "-1"})


def test_node_options_from_config_take_the_config_over_other_options() -> None:
    from chatcore.node import NodeOptions

    config = ProductionConfig(partitions=4, topic_prefix="t.", presence_ttl_s=9, heartbeat_s=3)
    options = NodeOptions.from_config(
        config, roles=frozenset({"sequencer"}), partitions=99, max_group_members=10
    )
    assert (options.partitions, options.topic_prefix) == (4, "t.")
    assert (options.presence_ttl_s, options.heartbeat_s) == (9, 3)
    assert options.roles == {"sequencer"} and options.max_group_members == 10


def test_s3_settings_come_from_the_environment_and_make_the_blob_store() -> None:
    from chatcore.backends import _s3_blobs
    from chatcore.media.s3 import S3BlobStore

    assert _s3_blobs(ProductionConfig()) is None, "no bucket: no blob store"
    config = ProductionConfig.load(
        env={
            "CHATCORE_S3_BUCKET": "media",
            "CHATCORE_S3_ENDPOINT": "http://127.0.0.1:9000",
            "CHATCORE_S3_ACCESS_KEY": "k",
            "CHATCORE_S3_SECRET_KEY": "s",
            "CHATCORE_S3_PREFIX": "p/",
            "CHATCORE_S3_CREATE_BUCKET": "true",
        }
    )
    assert config.s3_create_bucket is True
    with pytest.raises(InvalidRequest):
        ProductionConfig.load(env={"CHATCORE_S3_CREATE_BUCKET": "maybe"})
    assert (config.s3_bucket, config.s3_endpoint, config.s3_prefix) == (
        "media",
        "http://127.0.0.1:9000",
        "p/",
    )
    store = _s3_blobs(config)
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == ("media", "p/")

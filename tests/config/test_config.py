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


def test_cassandra_replication_is_checked_and_has_a_text_form_in_the_environment(
    tmp_path: Path,
) -> None:
    assert ProductionConfig.load(env={}).cassandra_replication == {
        "class": "SimpleStrategy",
        "replication_factor": 1,
    }
    config = ProductionConfig.load(env={"CHATCORE_CASSANDRA_REPLICATION": "3"})
    assert config.cassandra_replication == {"class": "SimpleStrategy", "replication_factor": 3}
    config = ProductionConfig.load(env={"CHATCORE_CASSANDRA_REPLICATION": "dc1:3, dc2:2"})
    assert config.cassandra_replication == {
        "class": "NetworkTopologyStrategy",
        "dc1": 3,
        "dc2": 2,
    }
    path = tmp_path / "c.toml"
    path.write_text(
        "[production]\n"
        'cassandra_replication = { class = "NetworkTopologyStrategy", "eu-west" = 3 }\n'
    )
    assert ProductionConfig.load(path, env={}).cassandra_replication["eu-west"] == 3


@pytest.mark.parametrize(
    "table",
    [
        '{ class = "SimpleStrategy" }',
        '{ class = "SimpleStrategy", replication_factor = 0 }',
        '{ class = "SimpleStrategy", replication_factor = 3, dc1 = 3 }',
        '{ class = "EverywhereStrategy", replication_factor = 3 }',
        "{ replication_factor = 3 }",
        '{ class = "NetworkTopologyStrategy" }',
        '{ class = "NetworkTopologyStrategy", dc1 = 0 }',
        '{ class = "NetworkTopologyStrategy", dc1 = "three" }',
        '{ class = "NetworkTopologyStrategy", dc1 = 2.5 }',
        '{ class = "NetworkTopologyStrategy", dc1 = 99 }',
        '{ class = "NetworkTopologyStrategy", "dc 1" = 3 }',
    ],
)
def test_bad_cassandra_replication_is_refused(tmp_path: Path, table: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[production]\ncassandra_replication = {table}\n")
    with pytest.raises(InvalidRequest, match="cassandra_replication"):
        ProductionConfig.load(path, env={})


@pytest.mark.parametrize("text", ["", "three", "dc1:3,dc1:2", "dc1:", "dc1:3,4", "0"])
def test_bad_cassandra_replication_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match="CHATCORE_CASSANDRA_REPLICATION"):
        ProductionConfig.load(env={"CHATCORE_CASSANDRA_REPLICATION": text})


def test_kafka_replication_factor_defaults_to_the_brokers_and_is_checked(tmp_path: Path) -> None:
    assert ProductionConfig.load(env={}).kafka_replication_factor is None
    env = {"CHATCORE_KAFKA_REPLICATION_FACTOR": "3"}
    assert ProductionConfig.load(env=env).kafka_replication_factor == 3
    env = {"CHATCORE_KAFKA_REPLICATION_FACTOR": ""}
    assert ProductionConfig.load(env=env).kafka_replication_factor is None
    for bad in ("0", "x", "1.5"):
        with pytest.raises(InvalidRequest, match="kafka_replication_factor"):
            ProductionConfig.load(env={"CHATCORE_KAFKA_REPLICATION_FACTOR": bad})
    path = tmp_path / "c.toml"
    path.write_text("[production]\nkafka_replication_factor = true\n")
    with pytest.raises(InvalidRequest, match="kafka_replication_factor"):
        ProductionConfig.load(path, env={})


def test_a_redis_cluster_url_makes_a_cluster_client_seeded_by_its_nodes() -> None:
    from chatcore._redis import RedisCluster, make_client

    client = make_client("redis+cluster://10.0.0.1:7001,10.0.0.2:7002", timeout_s=1.0)
    assert isinstance(client, RedisCluster)
    assert [(n.host, n.port) for n in client.nodes_manager.startup_nodes.values()] == [
        ("10.0.0.1", 7001),
        ("10.0.0.2", 7002),
    ]


@pytest.mark.parametrize(
    "url",
    ["redis+cluster://", "redis+cluster://h:7001/2", "redis+cluster://h:7001,:7002"],
)
def test_bad_redis_cluster_urls_are_refused(url: str) -> None:
    from chatcore._redis import make_client

    with pytest.raises(InvalidRequest):
        make_client(url, timeout_s=1.0)

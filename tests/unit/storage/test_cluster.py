"""REDIS_CLUSTER_NODES parsing and slot-sharing key names, without a cluster."""

from __future__ import annotations

import pytest
from serverless_runtime.storage import cluster
from serverless_runtime.storage.cluster import Invalid, parse_nodes, tagged


@pytest.mark.parametrize(
    ("text", "nodes"),
    [
        ("redis-0:7000", (("redis-0", 7000),)),
        ("10.0.0.1:7000, 10.0.0.2:7001", (("10.0.0.1", 7000), ("10.0.0.2", 7001))),
        ("redis.svc.cluster.local", (("redis.svc.cluster.local", 6379),)),
        ("[::1]:7000,[fd00::2]", (("::1", 7000), ("fd00::2", 6379))),
        ("a:1,a:1,b:2", (("a", 1), ("b", 2))),
    ],
)
def test_nodes_are_read_as_host_and_port(text: str, nodes: tuple[tuple[str, int], ...]) -> None:
    assert parse_nodes(text) == nodes


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the list is empty"),
        ("a:7000,,b:7001", "item 2: empty"),
        ("a:7000,", "item 2: empty"),
        ("a:0", "item 1: port '0' is not a number from 1 to 65535"),
        ("a:65536", "item 1: port '65536' is not a number from 1 to 65535"),
        ("a:", "item 1: port '' is not a number from 1 to 65535"),
        ("a:70x", "item 1: port '70x' is not a number from 1 to 65535"),
        ("::1:7000", "item 1: '::1:7000': an IPv6 address goes in brackets, [::1:7000]:6379"),
        ("[::1:7000", "item 1: '[::1:7000' has no closing ]"),
        ("[10.0.0.1]:7000", "item 1: '10.0.0.1' in brackets is not an IPv6 address"),
        ("[::1]7000", "item 1: '[::1]7000' has '7000' after the ]"),
        ("bad_host:7000", "item 1: 'bad_host' is not a host name or IP address"),
        ("999.1.1.1:7000", "item 1: '999.1.1.1' is not a host name or IP address"),
        ("redis://a:7000", "item 1: redis:// is a URL scheme; list host:port only"),
    ],
)
def test_a_bad_list_is_refused_in_one_line_that_says_why(text: str, reason: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_nodes(text)
    message = str(caught.value)
    assert message == f"REDIS_CLUSTER_NODES={text!r}: expected {cluster.EXPECTED} ({reason})"
    assert "\n" not in message


def test_unset_or_blank_means_no_cluster() -> None:
    assert cluster.from_env({}) is None
    assert cluster.from_env({"REDIS_CLUSTER_NODES": "  "}) is None


@pytest.mark.parametrize("other", ["REDIS_URL", "REDIS_SENTINELS"])
def test_another_location_beside_the_nodes_is_refused_without_showing_it(other: str) -> None:
    environ = {"REDIS_CLUSTER_NODES": "a:7000", other: "redis://:s3cret@host:6379/0"}
    with pytest.raises(Invalid) as caught:
        cluster.from_env(environ)
    assert caught.value.name == other
    assert "s3cret" not in str(caught.value)
    assert cluster.from_env({"REDIS_CLUSTER_NODES": "a:7000"}) == (("a", 7000),)


def test_listed_gives_back_what_parses_to_the_same_nodes() -> None:
    nodes = parse_nodes("a:7000,[::1]:7001,b")
    assert cluster.listed(nodes) == "a:7000,[::1]:7001,b:6379"
    assert parse_nodes(cluster.listed(nodes)) == nodes


@pytest.mark.parametrize(
    ("output", "name"),
    [
        ("out", "{out}:history"),
        ("resource:monitor", "{resource:monitor}:history"),
        ("a{b", "{a{b}:history"),
        ("{user1}.out", "{user1}{user1}.out:history"),
        ("ü€", "{ü€}:history"),
    ],
)
def test_derived_names(output: str, name: str) -> None:
    assert tagged(output, "history") == name


@pytest.mark.parametrize(
    "output", ["out", "{out}", "a{b", "{a{b}", "{user1}.out", "{{x}}", "ü€", "{ü}€"]
)
def test_a_derived_name_hashes_like_its_output_key(output: str) -> None:
    assert cluster.slot(tagged(output, "state")) == cluster.slot(output)


def test_no_two_output_keys_share_a_derived_name() -> None:
    outputs = ["out", "{out}", "{out}x", "{out}:x", "o{u}t", "{o{u}t", "{{out}}", "{out"]
    names = [tagged(output, "state") for output in outputs]
    assert len(set(names)) == len(outputs)


@pytest.mark.parametrize("output", ["a}b", "x{}y", "{}", "}{", "{}out", "out{}"])
def test_an_output_key_no_other_name_can_share_a_slot_with_is_refused(output: str) -> None:
    with pytest.raises(ValueError, match="no other key name can share its hash slot"):
        tagged(output, "state")


def test_the_slot_is_the_one_redis_computes_for_known_keys() -> None:
    # Values from the Redis Cluster specification's examples.
    assert cluster.slot("123456789") == 12739
    assert cluster.slot("{user1000}.following") == cluster.slot("user1000")
    assert cluster.slot("foo{{bar}}zap") == cluster.slot("{bar")

"""Site topic parsing and upstream names."""

from __future__ import annotations

from edge_agent.gateway.routing import SiteTopic, parse_site_topic, upstream_topic

EID = "01890a5d-ac96-774b-bcce-b302099a8057"


def test_parses_event_and_evidence() -> None:
    assert parse_site_topic("battrace/v1", "battrace/v1/s1/st-2/event") == SiteTopic(
        "s1", "st-2", "event"
    )
    assert parse_site_topic("battrace/v1", f"battrace/v1/s1/st/evidence/{EID}") == SiteTopic(
        "s1", "st", "evidence", EID
    )


def test_rejects_other_shapes() -> None:
    for bad in [
        "battrace/v2/s1/st/event",
        "battrace/v1/s1/st/status",
        "battrace/v1/s1/event",
        "battrace/v1/s 1/st/event",
        "battrace/v1/s1/st/evidence/not-a-uuid",
        "battrace/v1/s1/st/event/x",
        "battrace/v1//st/event",
    ]:
        assert parse_site_topic("battrace/v1", bad) is None, bad


def test_upstream_names_use_the_configured_prefix() -> None:
    assert upstream_topic("cloud/acme", SiteTopic("s1", "st", "event")) == "cloud/acme/s1/st/event"
    assert (
        upstream_topic("cloud/acme", SiteTopic("s1", "st", "evidence", EID))
        == f"cloud/acme/s1/st/evidence/{EID}"
    )

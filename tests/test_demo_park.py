"""The demo park's luminaires speak Zigbee2MQTT: `/set`, `/get` and availability."""

from __future__ import annotations

from datetime import UTC, datetime
import json

from demo import CONFIG_DIR
from demo.park import FLAKY_EVERY_TICKS, FLAKY_OFFLINE_TICKS, Park

NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)


def park() -> Park:
    return Park.from_asset_file(CONFIG_DIR / "demo_park.geojson")


def test_get_answers_with_the_state_a_set_left() -> None:
    simulated = park()
    mast = simulated.masts[0]
    topic = f"zigbee2mqtt/{mast.device}"
    answer = simulated.command(f"{topic}/set", b'{"state":"ON","brightness":76}', NOW)
    assert answer is not None
    assert (answer.topic, answer.payload["brightness"]) == (topic, 76)
    asked = simulated.command(f"{topic}/get", b'{"state":"","brightness":""}', NOW)
    assert asked is not None
    assert (asked.topic, asked.payload["state"], asked.payload["brightness"]) == (topic, "ON", 76)
    assert simulated.command(f"{topic}/get", b"not json", NOW) is None
    assert simulated.command(f"{topic}/rename", b"{}", NOW) is None
    assert simulated.command("zigbee2mqtt/nobody/get", b"{}", NOW) is None


def test_every_luminaire_is_announced_online_and_the_flaky_one_drops_off_and_back() -> None:
    simulated = park()
    announced = simulated.availability()
    assert len(announced) == len(simulated.masts)
    assert {m.topic.rsplit("/", 1)[1] for m in announced} == {"availability"}
    assert {json.dumps(m.payload) for m in announced} == {'{"state": "online"}'}
    flaky = [mast for mast in simulated.masts if mast.flaky]
    assert len(flaky) == 1
    topic = f"zigbee2mqtt/{flaky[0].device}"
    seen: list[tuple[int, str]] = []
    reports_while_offline = 0
    for _ in range(2 * FLAKY_EVERY_TICKS + 1):
        messages = simulated.tick(NOW)
        seen += [
            (simulated.ticks, m.payload["state"])
            for m in messages
            if m.topic == f"{topic}/availability"
        ]
        if not flaky[0].online:
            reports_while_offline += sum(m.topic == topic for m in messages)
            assert simulated.command(f"{topic}/set", b'{"state":"ON"}', NOW) is None
    assert [state for _, state in seen] == ["offline", "online"] * 2
    assert seen[1][0] - seen[0][0] == FLAKY_OFFLINE_TICKS
    assert reports_while_offline == 0


def test_a_park_without_flaky_masts_keeps_every_luminaire_online() -> None:
    simulated = Park.from_asset_file(CONFIG_DIR / "demo_park.geojson", flaky=False)
    for _ in range(FLAKY_EVERY_TICKS + 1):
        messages = simulated.tick(NOW)
        assert not [m for m in messages if m.topic.endswith("/availability")]
    assert all(mast.online for mast in simulated.masts)

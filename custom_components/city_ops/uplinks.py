"""LoRaWAN uplinks: one subscription per topic filter on the hub, routed to the sites by device.

Every site with LoRaWAN containers listens on its network server's wildcard topic, and in a city
the districts share that topic. Subscribed per site, each uplink reached every district, which
decoded it and dropped it unless the device was its own (four decodes per uplink in a city of four
districts). Here the hub subscribes once per topic filter; each uplink's device is read from its
topic and the message goes to the site(s) that bind that device, the only ones that decode it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from homeassistant.components import mqtt
from homeassistant.components.mqtt.models import ReceiveMessage
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .sources import lorawan
from .sources.reading import DecodeError, SourceKind

# The network servers whose uplinks share one wildcard topic (the others have a topic per device).
LORAWAN = (SourceKind.TTN, SourceKind.CHIRPSTACK)
DEVICE_OF: dict[SourceKind, Callable[[str], str]] = {
    SourceKind.TTN: lorawan.ttn_device,
    SourceKind.CHIRPSTACK: lorawan.chirpstack_device,
}


class UplinkSite(Protocol):
    """What a site offers the shared subscription."""

    def binds(self, kind: SourceKind, device: str) -> bool:
        """Whether one of the site's assets is fed by the device."""

    def handle_uplink(self, kind: SourceKind, message: ReceiveMessage) -> None:
        """Decode and apply a message (and count what is wrong with it)."""

    def count_unknown(self, kind: SourceKind, device: str) -> None:
        """Count (and log, rate-limited) an uplink of a device no asset of the site is bound to."""


@dataclass(slots=True)
class SharedTopic:
    """One topic filter of one network server, subscribed once for every site on the hub."""

    kind: SourceKind
    sites: list[UplinkSite] = field(default_factory=list)
    unsubscribe: CALLBACK_TYPE | None = None

    @callback
    def route(self, message: ReceiveMessage) -> None:
        """Hand the uplink to the sites that bind its device; the others only count it."""
        kind, sites = self.kind, self.sites
        try:
            device = DEVICE_OF[kind](message.topic)
        except DecodeError:
            # No device in the topic: every site counts the refusal, as if subscribed alone.
            for site in sites:
                site.handle_uplink(kind, message)
            return
        if len(sites) == 1:  # most hubs run one site: no list per uplink
            site = sites[0]
            if site.binds(kind, device):
                site.handle_uplink(kind, message)
            else:
                site.count_unknown(kind, device)
            return
        owners = [site for site in sites if site.binds(kind, device)]
        if owners:
            for site in owners:
                site.handle_uplink(kind, message)
            return
        for site in self.sites:
            site.count_unknown(kind, device)


DATA_UPLINKS: HassKey[dict[tuple[str, SourceKind], SharedTopic]] = HassKey(f"{DOMAIN}_uplinks")


async def async_join(
    hass: HomeAssistant, topic: str, kind: SourceKind, site: UplinkSite
) -> CALLBACK_TYPE:
    """Receive a network server's uplinks on `topic`; the first site subscribes for all.

    Returns the callback that leaves again; the last site to leave unsubscribes.
    """
    shared = hass.data.setdefault(DATA_UPLINKS, {})
    key = (topic, kind)
    topic_shared = shared.get(key)
    if topic_shared is None:
        # In the table before the await: a site set up meanwhile joins this subscription.
        topic_shared = shared[key] = SharedTopic(kind)
        try:
            topic_shared.unsubscribe = await mqtt.async_subscribe(
                hass, topic, topic_shared.route, qos=1, encoding=None
            )
        except BaseException:
            del shared[key]
            raise
    topic_shared.sites.append(site)

    @callback
    def leave() -> None:
        if site in topic_shared.sites:
            topic_shared.sites.remove(site)
        if topic_shared.sites or shared.get(key) is not topic_shared:
            return
        del shared[key]
        if topic_shared.unsubscribe is not None:
            topic_shared.unsubscribe()

    return leave

"""Our own zigpy fixtures: ZHA set up on a fake radio that answers like cooperative devices.

phcc ships no ZHA fixtures. Here the radio is a zigpy ControllerApplication whose serial side
is gone: every frame zigpy sends is recorded in `sent`, and the radio answers for the device it
is addressed to (reads from the device's own attribute table, configure-reporting and bind
accepted, cluster commands acknowledged with `command_status`, a luminaire reporting the level
it was moved to, a door lock answering lock_door / unlock_door with its own response carrying
`command_status` and reporting its new lock_state), so ZHA's join and our commands run through
the real zigpy stack. Reports come in as real ZCL frames via `report()`, commands a device sends
(a lock's keypad event) via `device_command()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
import itertools
import time
from typing import Any
from unittest.mock import AsyncMock, patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from zigpy.application import ControllerApplication
import zigpy.config
import zigpy.device
import zigpy.endpoint
import zigpy.profiles.zha
import zigpy.types as t
from zigpy.zcl import Cluster, foundation
from zigpy.zcl.clusters.closures import DoorLock
from zigpy.zcl.clusters.general import Basic, LevelControl, OnOff
from zigpy.zcl.clusters.measurement import OccupancySensing
import zigpy.zdo.types as zdo_t

__all__ = [
    "COORDINATOR_IEEE",
    "FakeRadio",
    "MakeZigpyDevice",
    "SentCommand",
    "ZhaNetwork",
    "locker_bank_endpoints",
    "make_zigpy_device",
    "settle_zha",
    "setup_zha",
    "zha_config_entry",
    "zigpy_radio",
]

COORDINATOR_IEEE = "00:12:4b:00:1c:a1:b2:c3"
ZHA_DOMAIN = "zha"

_ROUTER = zdo_t.MACCapabilityFlags(
    zdo_t.MACCapabilityFlags.AllocateAddress
    | zdo_t.MACCapabilityFlags.RxOnWhenIdle
    | zdo_t.MACCapabilityFlags.MainsPowered
    | zdo_t.MACCapabilityFlags.FullFunctionDevice
)
# LevelControl move_to_level (0x00) and move_to_level_with_on_off (0x04): switches on/off?
_MOVE_TO_LEVEL = {0x00: False, 0x04: True}
_SLEEPY = zdo_t.MACCapabilityFlags(zdo_t.MACCapabilityFlags.AllocateAddress)
# DoorLock lock_door (0x00) and unlock_door (0x01): the lock_state they leave the lock in.
_LOCK_DOOR = {0x00: DoorLock.LockState.Locked, 0x01: DoorLock.LockState.Unlocked}


def locker_bank_endpoints(*compartments: int) -> dict[int, dict[str, Any]]:
    """Endpoints of a locker bank: per compartment a DoorLock and an item (occupancy) sensor."""
    first = min(compartments)
    return {
        number: {
            "in": [*([Basic] if number == first else []), DoorLock, OccupancySensing],
            "device_type": zigpy.profiles.zha.DeviceType.DOOR_LOCK,
        }
        for number in compartments
    }


def _node_descriptor(logical_type: zdo_t.LogicalType, flags: int) -> zdo_t.NodeDescriptor:
    return zdo_t.NodeDescriptor(
        logical_type=logical_type,
        complex_descriptor_available=0,
        user_descriptor_available=0,
        reserved=0,
        aps_flags=0,
        frequency_band=zdo_t.FrequencyBand.Freq2400MHz,
        mac_capability_flags=flags,
        manufacturer_code=0x1234,
        maximum_buffer_size=82,
        maximum_incoming_transfer_size=82,
        server_mask=0,
        maximum_outgoing_transfer_size=82,
        descriptor_capability_field=zdo_t.DescriptorCapability.NONE,
    )


@dataclass(frozen=True, slots=True)
class SentCommand:
    """A ZCL frame the coordinator sent, decoded with the target cluster's own schema."""

    ieee: str
    endpoint_id: int
    cluster_id: int
    general: bool
    command: str
    args: dict[str, Any]


class FakeRadio(ControllerApplication):
    """A zigpy application without a serial port; answers in place of the devices."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.sent: list[t.ZigbeePacket] = []
        # Raised from send_packet when set (zigpy retries, then the caller sees it).
        self.send_error: BaseException | None = None
        # Status in the Default_Response to cluster commands (LevelControl, OnOff, ...).
        self.command_status = foundation.Status.SUCCESS
        # What each device would answer to Read_Attributes: (ieee, endpoint, cluster) -> values.
        self.device_attributes: dict[tuple[str, int, int], dict[int, Any]] = {}
        self.answer_errors: list[Exception] = []
        node = self.state.node_info
        node.ieee = t.EUI64.convert(COORDINATOR_IEEE)
        node.nwk = t.NWK(0x0000)
        node.logical_type = zdo_t.LogicalType.Coordinator
        node.manufacturer = "City Ops Test"
        node.model = "Fake radio"
        network = self.state.network_info
        network.pan_id = t.PanId(0x1A62)
        network.extended_pan_id = t.ExtendedPanId.convert("dd:dd:dd:dd:dd:dd:dd:dd")
        network.channel = 15
        network.network_key.key = t.KeyData(range(16))

    # -- radio: nothing behind it ---------------------------------------------------------

    async def _load_db(self) -> None:
        """No zigbee.db: every test starts with an empty network."""

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def start_network(self) -> None:
        """Put the coordinator in the device table the way radio libraries do."""
        ieee = self.state.node_info.ieee
        if ieee in self.devices:
            return
        coordinator = self.add_device(ieee, self.state.node_info.nwk)
        coordinator.node_desc = _node_descriptor(zdo_t.LogicalType.Coordinator, _ROUTER)
        endpoint = coordinator.add_endpoint(1)
        endpoint.status = zigpy.endpoint.Status.ZDO_INIT
        endpoint.profile_id = zigpy.profiles.zha.PROFILE_ID
        endpoint.device_type = zigpy.profiles.zha.DeviceType.CONTROL_BRIDGE
        coordinator.status = zigpy.device.Status.ENDPOINTS_INIT

    async def force_remove(self, dev: zigpy.device.BaseDevice) -> None:
        pass

    async def add_endpoint(self, descriptor: zdo_t.SimpleDescriptor) -> None:
        pass

    async def permit_ncp(self, time_s: int = 60) -> None:
        pass

    async def permit_with_link_key(
        self, node: t.EUI64, link_key: t.KeyData, time_s: int = 60
    ) -> None:
        pass

    async def write_network_info(self, *, network_info: Any, node_info: Any) -> None:
        pass

    async def load_network_info(self, *, load_devices: bool = False) -> None:
        pass

    async def reset_network_info(self) -> None:
        pass

    async def send_packet(self, packet: t.ZigbeePacket) -> None:
        if self.send_error is not None:
            raise self.send_error
        self.sent.append(packet)
        if packet.dst is not None and packet.dst.addr_mode == t.AddrMode.NWK:
            asyncio.get_running_loop().call_soon(self._answer, packet)

    # -- the devices' side ----------------------------------------------------------------

    def _answer(self, packet: t.ZigbeePacket) -> None:
        try:
            self._answer_for_device(packet)
        except Exception as err:  # a fixture bug must fail the test, not a loop callback
            self.answer_errors.append(err)
            raise

    def _answer_for_device(self, packet: t.ZigbeePacket) -> None:
        try:
            device = self.get_device(nwk=packet.dst.address)
        except KeyError:
            return
        if device.nwk == self.state.node_info.nwk:
            return
        if packet.dst_ep == 0:
            # ZDO request (Bind_req, ...): "SUCCESS" in the matching *_rsp.
            self._reply(device, packet, packet.cluster_id | 0x8000, bytes([packet.tsn, 0x00]))
            return
        hdr, _ = foundation.ZCLHeader.deserialize(packet.data.serialize())
        if hdr.frame_control.direction == foundation.Direction.Server_to_Client:
            return  # a response or report from us, e.g. the Default_Response to a report
        endpoint = device.endpoints.get(packet.dst_ep)
        cluster = getattr(endpoint, "in_clusters", {}).get(packet.cluster_id)
        if cluster is None:
            return
        if not hdr.frame_control.is_cluster:
            if hdr.command_id == foundation.GeneralCommand.Read_Attributes:
                # Only reads are parsed: zigpy's repr of some other requests fails when logged.
                _, request = cluster.deserialize(packet.data.serialize())
                self._reply_general(
                    device,
                    packet,
                    cluster,
                    hdr,
                    foundation.GeneralCommand.Read_Attributes_rsp,
                    status_records=self._read_records(device, packet.dst_ep, cluster, request),
                )
                return
            if hdr.command_id == foundation.GeneralCommand.Configure_Reporting:
                self._reply_general(
                    device,
                    packet,
                    cluster,
                    hdr,
                    foundation.GeneralCommand.Configure_Reporting_rsp,
                    status_records=[
                        foundation.ConfigureReportingResponseRecord(
                            status=foundation.Status.SUCCESS
                        )
                    ],
                )
                return
            if hdr.command_id == foundation.GeneralCommand.Write_Attributes:
                self._reply_general(
                    device,
                    packet,
                    cluster,
                    hdr,
                    foundation.GeneralCommand.Write_Attributes_rsp,
                    status_records=[
                        foundation.WriteAttributesStatusRecord(status=foundation.Status.SUCCESS)
                    ],
                )
                return
        if (
            hdr.frame_control.is_cluster
            and packet.cluster_id == DoorLock.cluster_id
            and hdr.command_id in _LOCK_DOOR
        ):
            self._answer_lock(device, packet, cluster, hdr)
            return
        if not hdr.frame_control.disable_default_response:
            self._reply_general(
                device,
                packet,
                cluster,
                hdr,
                foundation.GeneralCommand.Default_Response,
                command_id=hdr.command_id,
                status=self.command_status
                if hdr.frame_control.is_cluster
                else foundation.Status.UNSUP_GENERAL_COMMAND,
            )
        if (
            hdr.frame_control.is_cluster
            and self.command_status == foundation.Status.SUCCESS
            and packet.cluster_id == LevelControl.cluster_id
            and hdr.command_id in _MOVE_TO_LEVEL
        ):
            # A luminaire confirms a new level with reports, as ZHA configured it to.
            _, args = cluster.deserialize(packet.data.serialize())
            endpoint_id = packet.dst_ep
            asyncio.get_running_loop().call_soon(
                self.report,
                device,
                endpoint_id,
                LevelControl.cluster_id,
                {"current_level": args.level},
            )
            if _MOVE_TO_LEVEL[hdr.command_id] and OnOff.cluster_id in endpoint.in_clusters:
                asyncio.get_running_loop().call_soon(
                    self.report, device, endpoint_id, OnOff.cluster_id, {"on_off": args.level > 0}
                )

    def _answer_lock(
        self,
        device: zigpy.device.Device,
        packet: t.ZigbeePacket,
        cluster: Cluster,
        request_hdr: foundation.ZCLHeader,
    ) -> None:
        """A lock answers with lock_door_response / unlock_door_response (no Default_Response)."""
        hdr = foundation.ZCLHeader.cluster(
            tsn=request_hdr.tsn,
            command_id=request_hdr.command_id,
            direction=foundation.Direction.Server_to_Client,
        )
        body = cluster.client_commands[request_hdr.command_id].schema(status=self.command_status)
        self._reply(device, packet, packet.cluster_id, hdr.serialize() + body.serialize())
        if self.command_status == foundation.Status.SUCCESS:
            asyncio.get_running_loop().call_soon(
                self.report,
                device,
                packet.dst_ep,
                DoorLock.cluster_id,
                {"lock_state": _LOCK_DOOR[request_hdr.command_id]},
            )

    def _read_records(
        self, device: zigpy.device.Device, endpoint_id: int, cluster: Cluster, request: Any
    ) -> list[foundation.ReadAttributeRecord]:
        values = self.device_attributes.get((str(device.ieee), endpoint_id, cluster.cluster_id), {})
        records = []
        for attrid in request.attribute_ids:
            if attrid not in values or attrid not in cluster.attributes:
                records.append(
                    foundation.ReadAttributeRecord(
                        attrid=attrid, status=foundation.Status.UNSUPPORTED_ATTRIBUTE
                    )
                )
                continue
            attr = cluster.attributes[attrid]
            records.append(
                foundation.ReadAttributeRecord(
                    attrid=attrid,
                    status=foundation.Status.SUCCESS,
                    value=foundation.TypeValue(type=attr.zcl_type, value=attr.type(values[attrid])),
                )
            )
        return records

    def _reply_general(
        self,
        device: zigpy.device.Device,
        packet: t.ZigbeePacket,
        cluster: Cluster,
        request_hdr: foundation.ZCLHeader,
        command: foundation.GeneralCommand,
        **fields: Any,
    ) -> None:
        hdr = foundation.ZCLHeader.general(
            tsn=request_hdr.tsn,
            command_id=command,
            direction=foundation.Direction.Server_to_Client,
        )
        body = foundation.GENERAL_COMMANDS[command].schema(**fields)
        self._reply(device, packet, packet.cluster_id, hdr.serialize() + body.serialize())

    def _reply(
        self, device: zigpy.device.Device, request: t.ZigbeePacket, cluster_id: int, data: bytes
    ) -> None:
        self.packet_received(
            t.ZigbeePacket(
                src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=device.nwk),
                src_ep=request.dst_ep,
                dst=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=self.state.node_info.nwk),
                dst_ep=request.src_ep,
                tsn=request.tsn,
                profile_id=request.profile_id,
                cluster_id=cluster_id,
                data=t.SerializableBytes(data),
                lqi=255,
                rssi=-40,
            )
        )

    # -- helpers for tests ----------------------------------------------------------------

    def report(
        self,
        device: zigpy.device.Device,
        endpoint_id: int,
        cluster_id: int,
        attributes: Mapping[str | int, Any],
    ) -> None:
        """Deliver a ZCL Report_Attributes frame from a device, as the radio would."""
        cluster = device.endpoints[endpoint_id].in_clusters[cluster_id]
        reports = []
        for name, value in attributes.items():
            attr = cluster.find_attribute(name)
            reports.append(
                foundation.Attribute(
                    attrid=attr.id,
                    value=foundation.TypeValue(type=attr.zcl_type, value=attr.type(value)),
                )
            )
        hdr = foundation.ZCLHeader.general(
            tsn=device.get_sequence(),
            command_id=foundation.GeneralCommand.Report_Attributes,
            direction=foundation.Direction.Server_to_Client,
        )
        body = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Report_Attributes].schema(
            attribute_reports=reports
        )
        self._from_device(device, endpoint_id, cluster_id, hdr, body)

    def device_command(
        self,
        device: zigpy.device.Device,
        endpoint_id: int,
        cluster_id: int,
        command: str,
        **args: Any,
    ) -> None:
        """Deliver a cluster command a device sends us (a lock's operation_event_notification)."""
        cluster = device.endpoints[endpoint_id].in_clusters[cluster_id]
        definition = next(c for c in cluster.client_commands.values() if c.name == command)
        hdr = foundation.ZCLHeader.cluster(
            tsn=device.get_sequence(),
            command_id=definition.id,
            direction=foundation.Direction.Server_to_Client,
        )
        self._from_device(device, endpoint_id, cluster_id, hdr, definition.schema(**args))

    def _from_device(
        self,
        device: zigpy.device.Device,
        endpoint_id: int,
        cluster_id: int,
        hdr: foundation.ZCLHeader,
        body: Any,
    ) -> None:
        self.packet_received(
            t.ZigbeePacket(
                src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=device.nwk),
                src_ep=endpoint_id,
                dst=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=self.state.node_info.nwk),
                dst_ep=1,
                tsn=hdr.tsn,
                profile_id=zigpy.profiles.zha.PROFILE_ID,
                cluster_id=cluster_id,
                data=t.SerializableBytes(hdr.serialize() + body.serialize()),
                lqi=255,
                rssi=-40,
            )
        )

    def commands(self, cluster_id: int | None = None) -> list[SentCommand]:
        """ZCL commands sent to devices so far (optionally of one cluster), decoded."""
        decoded = []
        for packet in self.sent:
            if packet.dst_ep in (None, 0) or packet.dst.addr_mode != t.AddrMode.NWK:
                continue
            if cluster_id is not None and packet.cluster_id != cluster_id:
                continue
            try:
                device = self.get_device(nwk=packet.dst.address)
                cluster = device.endpoints[packet.dst_ep].in_clusters[packet.cluster_id]
            except KeyError:
                continue
            hdr, args = cluster.deserialize(packet.data.serialize())
            general = not hdr.frame_control.is_cluster
            commands = foundation.GENERAL_COMMANDS if general else cluster.server_commands
            decoded.append(
                SentCommand(
                    ieee=str(device.ieee),
                    endpoint_id=packet.dst_ep,
                    cluster_id=packet.cluster_id,
                    general=general,
                    command=commands[hdr.command_id].name,
                    args=args.as_dict() if hasattr(args, "as_dict") else {"args": args},
                )
            )
        return decoded


@dataclass(slots=True)
class ZhaNetwork:
    """ZHA running on the fake radio."""

    app: FakeRadio
    entry: MockConfigEntry
    gateway: Any
    devices: dict[str, zigpy.device.Device] = field(default_factory=dict)


@pytest.fixture
def zigpy_radio() -> FakeRadio:
    """The fake radio ZHA will find behind its serial port."""
    return FakeRadio(
        {
            zigpy.config.CONF_DATABASE: None,
            zigpy.config.CONF_DEVICE: {zigpy.config.CONF_DEVICE_PATH: "/dev/ttyFAKE0"},
            zigpy.config.CONF_NWK_BACKUP_ENABLED: False,
            zigpy.config.CONF_TOPO_SCAN_ENABLED: False,
            zigpy.config.CONF_OTA: {zigpy.config.CONF_OTA_ENABLED: False},
        }
    )


@pytest.fixture
def zha_config_entry() -> MockConfigEntry:
    """A ZHA config entry for an EZSP stick (current entry version, no migration)."""
    return MockConfigEntry(
        domain=ZHA_DOMAIN,
        version=5,
        minor_version=2,
        title="Fake radio",
        data={
            "device": {"path": "/dev/ttyFAKE0", "baudrate": 115200, "flow_control": None},
            "radio_type": "ezsp",
        },
    )


@pytest.fixture
async def setup_zha(
    hass: HomeAssistant, zigpy_radio: FakeRadio, zha_config_entry: MockConfigEntry
) -> AsyncGenerator[ZhaNetwork]:
    """Set up ZHA (quirks off, so device objects stay plain zigpy) on the fake radio."""
    from homeassistant.components.zha.helpers import get_zha_gateway  # noqa: PLC0415
    from homeassistant.setup import async_setup_component  # noqa: PLC0415

    zha_config_entry.add_to_hass(hass)
    with (
        patch(
            "bellows.zigbee.application.ControllerApplication.new",
            AsyncMock(return_value=zigpy_radio),
        ),
        patch("homeassistant.components.zha.radio_manager.CONNECT_DELAY_S", 0),
        patch("homeassistant.components.zha.usb_device_from_path", return_value=None),
    ):
        assert await async_setup_component(hass, ZHA_DOMAIN, {ZHA_DOMAIN: {"enable_quirks": False}})
        await hass.async_block_till_done()
        assert zha_config_entry.state is ConfigEntryState.LOADED
        yield ZhaNetwork(app=zigpy_radio, entry=zha_config_entry, gateway=get_zha_gateway(hass))


_NWK = itertools.count(0x1001)

type MakeZigpyDevice = Callable[..., Awaitable[zigpy.device.Device]]


@pytest.fixture
def make_zigpy_device(hass: HomeAssistant, setup_zha: ZhaNetwork) -> MakeZigpyDevice:
    """Return a factory that builds a zigpy device from cluster lists and joins it to ZHA."""

    async def make(
        ieee: str,
        endpoints: Mapping[int, Mapping[str, Any]],
        manufacturer: str = "City Ops Test",
        model: str = "Test device",
        *,
        mains_powered: bool = True,
        attributes: Mapping[int, Mapping[int, Mapping[str, Any]]] | None = None,
    ) -> zigpy.device.Device:
        """`endpoints`: {1: {"in": [OnOff, 0x0008, ...], "out": [...], "device_type": 0x0101}};
        `attributes`: what the device answers to reads, {endpoint: {cluster id: {name: value}}}.
        """
        app = setup_zha.app
        device = zigpy.device.Device(app, t.EUI64.convert(ieee), t.NWK(next(_NWK)))
        device.node_desc = _node_descriptor(
            zdo_t.LogicalType.Router if mains_powered else zdo_t.LogicalType.EndDevice,
            _ROUTER if mains_powered else _SLEEPY,
        )
        device.manufacturer = manufacturer
        device.model = model
        for endpoint_id, spec in endpoints.items():
            endpoint = device.add_endpoint(endpoint_id)
            endpoint.status = zigpy.endpoint.Status.ZDO_INIT
            endpoint.profile_id = spec.get("profile", zigpy.profiles.zha.PROFILE_ID)
            endpoint.device_type = spec.get(
                "device_type", zigpy.profiles.zha.DeviceType.ON_OFF_LIGHT
            )
            for cluster in _cluster_ids(spec.get("in", ())):
                endpoint.add_input_cluster(cluster)
            for cluster in _cluster_ids(spec.get("out", ())):
                endpoint.add_output_cluster(cluster)
        for endpoint_id, clusters in (attributes or {}).items():
            for cluster_id, values in clusters.items():
                cluster = device.endpoints[endpoint_id].in_clusters[cluster_id]
                app.device_attributes[(str(device.ieee), endpoint_id, cluster_id)] = {
                    cluster.find_attribute(name).id: value for name, value in values.items()
                }
        device.status = zigpy.device.Status.ENDPOINTS_INIT
        device.last_seen = time.time()
        # What zigpy does once an interview completes: every application listener (ZHA's
        # gateway, our ZhaDevices) hears device_initialized.
        app.device_initialized(device)
        await settle_zha(hass, setup_zha)
        joined = app.get_device(ieee=device.ieee)
        assert setup_zha.gateway.get_device(joined.ieee) is not None
        setup_zha.devices[str(joined.ieee)] = joined
        return joined

    return make


async def settle_zha(hass: HomeAssistant, network: ZhaNetwork) -> None:
    """Wait for ZHA's join work (bind, configure reporting, reads), which runs in ZHA's tasks."""
    # The zha library tracks these tasks itself, so hass.async_block_till_done() misses them.
    tasks = network.gateway._device_init_tasks
    while tasks:
        await asyncio.gather(*tasks.values())
    await hass.async_block_till_done()


def _cluster_ids(clusters: Sequence[int | type[Cluster]]) -> list[int]:
    return [c if isinstance(c, int) else c.cluster_id for c in clusters]

"""Base entities: one device per asset (in its subentry), one device per site."""

from __future__ import annotations

from functools import lru_cache
import unicodedata

from homeassistant.const import ATTR_ENTITY_PICTURE
from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import DOMAIN, WASTE_KIND_MODEL
from .model.container import Container
from .model.lighting import Mast
from .model.locker import Compartment, LockerBank
from .permissions import Action, async_check
from .runtime import CityOpsConfigEntry, CityOpsRuntime


@lru_cache(maxsize=256)  # a site's entity names are a few translations
def plain_object_id(name: str) -> str:
    """A translated entity name transliterated as Home Assistant's slugify does it.

    Home Assistant makes a new entity's id by slugifying "<device> <entity name>" with
    python-slugify. For a non-ASCII text that tries to import the optional Unidecode module
    (Home Assistant does not install it) before falling back to text-unidecode, and the failed
    import, a search of the module path, is repeated for every name: half of the event loop's
    time in an import of 5,000 containers on a German installation ("Füllstand"). Our names'
    only non-ASCII letters are umlauts and ß, which both transliterate to the letter without
    its diaeresis and "ss"; given this plain form, slugify makes the same id, at its ASCII fast
    path when the asset's name is plain too (tests/test_entity_names.py checks every
    translated name against Home Assistant's slugify). Anything else is left to Home Assistant.
    """
    if name.isascii():
        return name
    plain = "".join(
        char
        for char in unicodedata.normalize("NFKD", name).replace("ß", "ss")
        if not 0x300 <= ord(char) <= 0x36F  # combining diacritical marks
    )
    return plain if plain.isascii() else name


class AssetEntity(Entity):
    """An entity of one asset; writes its state only when what it shows changed."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    # The marker follows the state it pictures; recording it too would only grow the database.
    _unrecorded_attributes = frozenset({ATTR_ENTITY_PICTURE})

    def __init__(
        self, entry: CityOpsConfigEntry, asset_id: str, description: EntityDescription
    ) -> None:
        """Bind to the asset behind a subentry; its device hangs off the site's device."""
        self.entity_description = description
        self.runtime: CityOpsRuntime = entry.runtime_data
        self.asset_id = asset_id
        self._attr_unique_id = f"{asset_id}_{description.key}"
        self._shown: object = object()
        self._value: object = None

    @property
    def device_info(self) -> DeviceInfo:
        """The asset's device, under the site's (read when the entity is added).

        Built when asked rather than kept: a site holds thousands of entities.
        """
        asset = self.runtime.assets[self.asset_id]
        return DeviceInfo(
            identifiers={(DOMAIN, self.asset_id)},
            name=asset.name,
            manufacturer="City Operations",
            model=self.device_model(),
            model_id=f"{asset.source_kind}:{asset.device}",
            via_device_id=self.runtime.site_device_id,
        )

    @property
    def suggested_object_id(self) -> str | None:
        """The name Home Assistant makes a new entity's id from, in plain letters.

        Home Assistant keeps it in the entity registry (`object_id_base`); an entity registered
        before with the German form gets it updated once, at its next set-up.
        """
        name = super().suggested_object_id
        return None if name is None else plain_object_id(name)

    def device_model(self) -> str:
        """What the device is, in the city's words."""
        raise NotImplementedError

    def shown_value(self) -> object:
        """What the entity displays; compared to skip writes that would change nothing."""
        raise NotImplementedError

    def marker(self) -> str | None:
        """The map marker (a picture) of the entity that stands for its asset on the map."""
        return None

    async def async_permit(self, action: Action) -> None:
        """Refuse an action the calling user may not take (the services' check, too)."""
        await async_check(
            self.hass,
            self._context,
            action,
            entry=self.runtime.entry,
            entity_ids=[self.entity_id],
        )

    @property
    def value(self) -> object:
        """The value computed at the last change, so a state write does not compute it again."""
        return self._value

    async def async_added_to_hass(self) -> None:
        """Follow the container's updates."""
        await super().async_added_to_hass()
        self._value = self.shown_value()
        self._attr_entity_picture = self.marker()
        self._shown = (self.available, self._value, self._attr_entity_picture)
        self.async_on_remove(
            self.runtime.async_add_listener(self.asset_id, self._changed, self.shows())
        )

    def shows(self) -> str:
        """What of the asset this entity shows, so that other changes pass it by ("": all)."""
        return ""

    @callback
    def _changed(self) -> None:
        value = self.shown_value()
        shown = (self.available, value, self.marker())
        if shown != self._shown:
            self._value = value
            if shown[2] != self._shown[2]:  # type: ignore[index]
                # Setting an _attr_ clears Home Assistant's cached properties: only on change.
                self._attr_entity_picture = shown[2]
            self._shown = shown
            self.async_write_ha_state()


class ContainerEntity(AssetEntity):
    """An entity of one waste container."""

    def __init__(
        self, entry: CityOpsConfigEntry, asset_id: str, description: EntityDescription
    ) -> None:
        """Bind to the container behind a subentry."""
        self.container: Container = entry.runtime_data.site.containers[asset_id]
        super().__init__(entry, asset_id, description)

    def shows(self) -> str:
        """One quantity of the container, named like the entity's key."""
        return self.entity_description.key

    def device_model(self) -> str:
        """The container's kind of waste."""
        return WASTE_KIND_MODEL.get(self.container.spec.waste_kind, "Waste container")

    @property
    def available(self) -> bool:
        """A container that missed three reports is unavailable."""
        return self.container.status.online


class MastEntity(AssetEntity):
    """An entity of one lighting mast."""

    def __init__(
        self, entry: CityOpsConfigEntry, asset_id: str, description: EntityDescription
    ) -> None:
        """Bind to the mast behind a subentry."""
        self.mast: Mast = entry.runtime_data.site.masts[asset_id]
        super().__init__(entry, asset_id, description)

    def device_model(self) -> str:
        """A lighting mast, with its path when known."""
        path = self.mast.spec.path
        return f"Lighting mast ({path})" if path else "Lighting mast"

    @property
    def available(self) -> bool:
        """A mast Zigbee2MQTT reports offline is unavailable until it is back online."""
        return self.mast.online


class LockerBankEntity(AssetEntity):
    """An entity of a locker bank as a whole."""

    def __init__(
        self, entry: CityOpsConfigEntry, asset_id: str, description: EntityDescription
    ) -> None:
        """Bind to the bank behind a subentry."""
        self.bank: LockerBank = entry.runtime_data.site.locker_banks[asset_id]
        super().__init__(entry, asset_id, description)

    def device_model(self) -> str:
        """A locker bank (the services' device picker filters on this model)."""
        return "Locker bank"


class CompartmentEntity(LockerBankEntity):
    """An entity of one compartment; the number goes into the translated name."""

    def __init__(
        self,
        entry: CityOpsConfigEntry,
        asset_id: str,
        description: EntityDescription,
        number: int,
    ) -> None:
        """Bind to one compartment of the bank."""
        super().__init__(entry, asset_id, description)
        self.compartment: Compartment = self.bank.compartments[number]
        self._attr_unique_id = f"{asset_id}_{number}_{description.key}"
        self._attr_translation_placeholders = {"number": str(number)}

    @property
    def available(self) -> bool:
        """A bank that went silent (or whose radio is gone) shows no compartment state."""
        return self.bank.online


class SiteEntity(Entity):
    """An entity of the site as a whole, refreshed (debounced) when anything on it changes."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: CityOpsConfigEntry, description: EntityDescription) -> None:
        """Attach to the site's device."""
        self.entity_description = description
        self.runtime: CityOpsRuntime = entry.runtime_data
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            manufacturer="City Operations",
            model="Site",
            entry_type=DeviceEntryType.SERVICE,
        )

    async def async_added_to_hass(self) -> None:
        """Follow the site's updates."""
        await super().async_added_to_hass()
        self.async_on_remove(self.runtime.async_add_site_listener(self._site_changed))

    @callback
    def _site_changed(self) -> None:
        self.async_write_ha_state()

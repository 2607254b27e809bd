"""Constants of the City Operations integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "city_ops"
LOGGER = logging.getLogger(__package__)

CONF_ZIGBEE2MQTT_BASE: Final = "zigbee2mqtt_base"
CONF_TTN_TOPIC: Final = "ttn_topic"
CONF_CHIRPSTACK_TOPIC: Final = "chirpstack_topic"
CONF_NATIVE_BASE: Final = "native_base"
CONF_DEPOT: Final = "depot"
CONF_FULL_THRESHOLD: Final = "full_threshold"
CONF_DUE_HORIZON_H: Final = "due_horizon_h"
CONF_BOOKING_USERS: Final = "booking_users"  # user ids that may only book (a booking portal)

DEFAULT_ZIGBEE2MQTT_BASE: Final = "zigbee2mqtt"
DEFAULT_TTN_TOPIC: Final = "v3/+/devices/+/up"
DEFAULT_CHIRPSTACK_TOPIC: Final = "application/+/device/+/event/up"
DEFAULT_NATIVE_BASE: Final = "city_ops"
DEFAULT_FULL_THRESHOLD: Final = 80
DEFAULT_DUE_HORIZON_H: Final = 24

SUBENTRY_CONTAINER: Final = "container"
# A container device's model, by waste kind.
WASTE_KIND_MODEL: Final = {
    "paper": "Paper container",
    "glass": "Glass container",
    "residual": "Residual waste container",
    "organic": "Organic waste container",
    "packaging": "Packaging container",
    "other": "Waste container",
}

CONF_SOURCE_KIND: Final = "source_kind"
CONF_DEVICE: Final = "device"

EVENT_CONTAINER_EMPTIED: Final = "city_ops_container_emptied"
EVENT_CONTAINER_FIRE: Final = "city_ops_container_fire_alarm"
EVENT_LAMP_FAULT: Final = "city_ops_lamp_fault"

TOPIC_DEFAULTS_DATA: Final = {
    CONF_ZIGBEE2MQTT_BASE: DEFAULT_ZIGBEE2MQTT_BASE,
    CONF_TTN_TOPIC: DEFAULT_TTN_TOPIC,
    CONF_CHIRPSTACK_TOPIC: DEFAULT_CHIRPSTACK_TOPIC,
    CONF_NATIVE_BASE: DEFAULT_NATIVE_BASE,
}

SUBENTRY_MAST: Final = "mast"
SUBENTRY_LOCKER_BANK: Final = "locker_bank"

# Lighting profile (site options; a mast may override base, boost and hold).
CONF_BASE_LEVEL: Final = "base_level"
CONF_BOOST_LEVEL: Final = "boost_level"
CONF_HOLD_S: Final = "hold_s"
CONF_CORRIDOR_HOPS: Final = "corridor_hops"
CONF_TRANSITION_UP_S: Final = "transition_up_s"
CONF_TRANSITION_DOWN_S: Final = "transition_down_s"
CONF_NIGHT_START: Final = "night_start"
CONF_NIGHT_END: Final = "night_end"
CONF_NIGHT_LEVEL: Final = "night_level"
CONF_WARM_KELVIN: Final = "warm_kelvin"
CONF_LUX_THRESHOLD: Final = "lux_threshold"

# The residents' booking page and the open availability feed (site options).
CONF_BOOKING_PAGE: Final = "booking_page"
CONF_AVAILABILITY_FEED: Final = "availability_feed"
CONF_BOOKING_ACCESS_KEY: Final = "booking_access_key"  # set: only a pilot group may book
CONF_BOOKING_MAX_ACTIVE: Final = "booking_max_active"
CONF_BOOKING_PER_ADDRESS_H: Final = "booking_per_address_h"
CONF_BOOKING_PER_CONTACT_DAY: Final = "booking_per_contact_day"
DEFAULT_BOOKING_MAX_ACTIVE: Final = 2
DEFAULT_BOOKING_PER_ADDRESS_H: Final = 20
DEFAULT_BOOKING_PER_CONTACT_DAY: Final = 6
CONF_LEAD_M: Final = "lead_m"
CONF_LEAD_S: Final = "lead_s"
CONF_BEHIND_M: Final = "behind_m"
# Per path: {"Seeweg": {"lead_m": 80, "hold_s": 60}} over the site's profile.
CONF_PATH_PROFILES: Final = "path_profiles"
PATH_PROFILE_KEYS: Final = (
    "base_level",
    "boost_level",
    "hold_s",
    "corridor_hops",
    "lead_m",
    "lead_s",
    "behind_m",
)

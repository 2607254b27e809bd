// City Operations dashboard strategy: Waste, Lighting and Lockers views for every site, built
// from the device and entity registries (platform + translation key, never an entity id), in the
// viewing user's language, with Home Assistant's built-in cards only.
//
// Home Assistant calls the static methods of the element "ll-strategy-dashboard-city-ops" for a
// dashboard whose configuration is `strategy: {type: custom:city-ops}`. The same module runs
// under Node for the tests (no DOM there, so registering the element is skipped).

const PLATFORM = "city_ops";

export const TEXTS = {
  en: {
    title: "City Operations",
    waste: "Waste",
    lighting: "Lighting",
    lockers: "Lockers",
    empty_site: "Nothing here yet",
    empty_site_text:
      "Add masts, containers or locker banks to this site (Settings › Devices & services › City Operations), or import the city's asset file.",
    alarms: "Alarms",
    fire: "Fire alarm",
    tilted: "Tilted",
    route: "Collection route",
    tour: "{stops} stops to empty · tour {km} km",
    tour_empty: "Nothing to empty now.",
    map: "Map",
    legend_full: "full",
    legend_almost_full: "almost full",
    legend_ok: "fine",
    legend_alarm: "fire or tilt alarm",
    legend_offline: "not reporting",
    legend_boosted: "boosted",
    legend_base: "base level",
    legend_dark: "dark",
    legend_fault: "lamp fault",
    map_hint_waste:
      "The number is the fill level in %. Point at a marker for its name, tap it for the fill history.",
    map_hint_lighting:
      "The number is the lamp's level in %. Point at a marker for its name, tap it for its history.",
    all_clear: "Nothing needs attention.",
    all_reporting: "Every sensor reports, no battery is low.",
    sensors: "Sensors",
    offline: "Not reporting",
    low_battery: "Batteries below 20 %",
    fill_levels: "Fill levels",
    faults: "Lamp faults",
    motion: "Motion now",
    masts: "Masts",
    no_path: "Without path",
    energy: "Energy and savings",
    energy_site: "Site",
    energy_path: "Path {path}",
    savings_of: "Savings · {name}",
    savings_week: "Savings since counting began, last 7 days",
    energy_per_day: "{name}: energy per day",
    energy_used: "Used",
    energy_reference: "At full power",
    available: "Free now",
    per_type: "{item}: **{count}** free",
    nothing_to_lend: "Nothing to lend at the moment.",
    next: "Next pickups and returns",
    next_none: "No pickups or returns due.",
    pickup: "pickup by",
    due_back: "due back",
    overdue_since: "overdue since",
    attention: "Needs attention",
    overdue: "Overdue loans",
    doors_open: "Doors open",
    out_of_service: "Out of service",
    reservations: "Reservations",
    compartment: "Compartment {number} · {item}",
  },
  de: {
    title: "Stadtbetrieb",
    waste: "Abfall",
    lighting: "Beleuchtung",
    lockers: "Schließfächer",
    empty_site: "Hier ist noch nichts",
    empty_site_text:
      "Fügen Sie diesem Standort Masten, Behälter oder Schließfachanlagen hinzu (Einstellungen › Geräte & Dienste › City Operations) oder importieren Sie die Bestandsdatei der Stadt.",
    alarms: "Alarme",
    fire: "Brandalarm",
    tilted: "Umgekippt",
    route: "Sammeltour",
    tour: "{stops} Behälter zu leeren · Tour {km} km",
    tour_empty: "Gerade ist nichts zu leeren.",
    map: "Karte",
    legend_full: "voll",
    legend_almost_full: "fast voll",
    legend_ok: "in Ordnung",
    legend_alarm: "Brand- oder Kippalarm",
    legend_offline: "meldet nicht",
    legend_boosted: "angehoben",
    legend_base: "Grundlicht",
    legend_dark: "dunkel",
    legend_fault: "Leuchtenstörung",
    map_hint_waste:
      "Die Zahl ist der Füllstand in %. Zeigen Sie auf einen Marker für seinen Namen, tippen Sie ihn an für den Füllverlauf.",
    map_hint_lighting:
      "Die Zahl ist die Helligkeit in %. Zeigen Sie auf einen Marker für seinen Namen, tippen Sie ihn an für den Verlauf.",
    all_clear: "Nichts braucht gerade Aufmerksamkeit.",
    all_reporting: "Alle Sensoren melden, keine Batterie ist schwach.",
    sensors: "Sensoren",
    offline: "Melden nicht",
    low_battery: "Batterien unter 20 %",
    fill_levels: "Füllstände",
    faults: "Leuchtenstörungen",
    motion: "Bewegung jetzt",
    masts: "Masten",
    no_path: "Ohne Weg",
    energy: "Energie und Ersparnis",
    energy_site: "Standort",
    energy_path: "Weg {path}",
    savings_of: "Ersparnis · {name}",
    savings_week: "Ersparnis seit Zählbeginn, letzte 7 Tage",
    energy_per_day: "{name}: Energie pro Tag",
    energy_used: "Verbraucht",
    energy_reference: "Bei voller Leistung",
    available: "Jetzt frei",
    per_type: "{item}: **{count}** frei",
    nothing_to_lend: "Gerade ist nichts auszuleihen.",
    next: "Nächste Abholungen und Rückgaben",
    next_none: "Keine Abholung oder Rückgabe fällig.",
    pickup: "Abholung bis",
    due_back: "Rückgabe bis",
    overdue_since: "überfällig seit",
    attention: "Braucht Aufmerksamkeit",
    overdue: "Überfällige Ausleihen",
    doors_open: "Offene Türen",
    out_of_service: "Außer Betrieb",
    reservations: "Reservierungen",
    compartment: "Fach {number} · {item}",
  },
};

// The integration pictures each asset's state as its map entity's `entity_picture` (the
// built-in map draws it in the marker; tiles show it with `show_entity_picture`), so colours
// follow the states without regenerating the dashboard. The legend shows the same pictures:
// [marker state, sample label, text key].
const MARKER_URL = "/city_ops/marker";
export const LEGENDS = {
  waste: [
    ["full", "92", "legend_full"],
    ["almost_full", "75", "legend_almost_full"],
    ["ok", "40", "legend_ok"],
    ["alarm", "-", "legend_alarm"],
    ["offline", "-", "legend_offline"],
  ],
  lighting: [
    ["boosted", "100", "legend_boosted"],
    ["base", "30", "legend_base"],
    ["dark", "-", "legend_dark"],
    ["fault", "-", "legend_fault"],
    ["offline", "-", "legend_offline"],
  ],
};

const LOW_BATTERY = 20;

export function texts(hass) {
  const language = String(hass?.locale?.language || hass?.language || "en").split("-")[0];
  return TEXTS[language] || TEXTS.en;
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
}

export function slug(text) {
  return String(text)
    .toLowerCase()
    .replace(/ä/g, "ae")
    .replace(/ö/g, "oe")
    .replace(/ü/g, "ue")
    .replace(/ß/g, "ss")
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

function deviceName(device) {
  return device.name_by_user || device.name || "";
}

// Our entities, computed once per registry snapshot (hass.entities changes identity on updates).
const ownEntitiesCache = new WeakMap();

function ownEntities(hass) {
  const registry = hass.entities || {};
  let own = ownEntitiesCache.get(registry);
  if (!own) {
    own = Object.values(registry).filter(
      (entity) => entity.platform === PLATFORM && entity.device_id && !entity.hidden,
    );
    ownEntitiesCache.set(registry, own);
  }
  return own;
}

// Each path's savings, energy and reference on the site's device (the sensors name their
// path in the `path` attribute), by path name.
function pathFigures(hass, keys) {
  const paths = new Map();
  for (const [key, figure] of [
    ["path_savings", "savings"],
    ["path_energy", "energy"],
    ["path_reference_energy", "reference"],
  ]) {
    for (const entityId of keys[key] || []) {
      const path = hass.states[entityId].attributes?.path;
      if (typeof path !== "string" || !path) continue;
      paths.set(path, { ...(paths.get(path) || { path }), [figure]: entityId });
    }
  }
  return [...paths.values()].sort((a, b) => a.path.localeCompare(b.path));
}

// The sites of this installation and their assets, from the registries; only entities that
// have a state are used (an entity a device never reported does not exist).
export function siteModel(hass) {
  const devices = hass.devices || {};
  const byDevice = new Map();
  for (const entity of ownEntities(hass)) {
    if (!hass.states[entity.entity_id]) continue;
    const keyed = byDevice.get(entity.device_id) || [];
    keyed.push(entity);
    byDevice.set(entity.device_id, keyed);
  }
  const keysOf = (deviceId) => {
    const keys = {};
    for (const entity of byDevice.get(deviceId) || []) {
      const key = entity.translation_key || "";
      (keys[key] = keys[key] || []).push(entity.entity_id);
    }
    return keys;
  };
  const sites = [];
  for (const [deviceId, entities] of byDevice) {
    if (!entities.some((entity) => entity.translation_key === "collection_route")) continue;
    const device = devices[deviceId];
    if (!device) continue;
    const keys = keysOf(deviceId);
    sites.push({
      id: deviceId,
      name: deviceName(device),
      route: keys.collection_route?.[0],
      due: keys.containers_due?.[0],
      energy: keys.lighting_energy?.[0],
      reference: keys.lighting_reference_energy?.[0],
      savings: keys.lighting_savings?.[0],
      paths: pathFigures(hass, keys),
      containers: [],
      masts: [],
      banks: [],
    });
  }
  sites.sort((a, b) => a.name.localeCompare(b.name));
  const siteById = new Map(sites.map((site) => [site.id, site]));
  for (const deviceId of byDevice.keys()) {
    const device = devices[deviceId];
    const site = device && siteById.get(device.via_device_id);
    if (!site) continue;
    const keys = keysOf(deviceId);
    const one = (key) => keys[key]?.[0];
    const name = deviceName(device);
    if (one("fill_level")) {
      site.containers.push({
        device: deviceId,
        name,
        fill_level: one("fill_level"),
        battery_known: typeof hass.states[one("fill_level")].attributes?.battery === "number",
        fill_state: one("fill_state"),
        last_emptied: one("last_emptied"),
        predicted_full: one("predicted_full"),
        battery: one("battery"),
        temperature: one("temperature"),
        fire_alarm: one("fire_alarm"),
        tilt: one("tilt"),
      });
    } else if (one("light")) {
      const light = one("light");
      site.masts.push({
        device: deviceId,
        name,
        light,
        path: hass.states[light].attributes.path || "",
        motion: one("motion"),
        lamp_fault: one("lamp_fault"),
        power: one("power"),
        energy: one("energy"),
        illuminance: one("illuminance"),
      });
    } else if (one("items_available")) {
      const compartments = (keys.loan_state || [])
        .map((entityId) => {
          const attributes = hass.states[entityId].attributes;
          return {
            number: Number(attributes.compartment),
            item: attributes.item || "",
            item_type: attributes.item_type || "",
            loan_state: entityId,
          };
        })
        .sort((a, b) => a.number - b.number);
      site.banks.push({
        device: deviceId,
        name,
        items_available: one("items_available"),
        reservations: one("reservations"),
        compartments,
        doors: keys.door || [],
        locks: keys.compartment || [],
      });
    }
  }
  for (const site of sites) {
    // Assets in the order the registry created them is the order of the asset file; a name
    // sort is what an operator searches by.
    site.containers.sort((a, b) => a.name.localeCompare(b.name));
    site.banks.sort((a, b) => a.name.localeCompare(b.name));
  }
  return sites;
}

// What the generated configuration depends on beyond the registries: the language, which of
// our entities have a state (an optional entity appears once its device reports it) and which
// containers reported a battery. Cheap enough to compute on every state change; a value alone
// changes nothing.
export function fingerprint(hass) {
  let present = 0;
  let batteries = 0;
  for (const entity of ownEntities(hass)) {
    const state = hass.states[entity.entity_id];
    if (!state) continue;
    present += 1;
    if (entity.translation_key === "fill_level" && typeof state.attributes?.battery === "number") {
      batteries += 1;
    }
  }
  return `${texts(hass) === TEXTS.de ? "de" : "en"}|${present}|${batteries}`;
}

// One line of marker pictures with what each means, then how to reach names and history.
function legend(kind, hint, t) {
  const entries = LEGENDS[kind].map(
    ([state, label, key]) =>
      `<img src="${MARKER_URL}/${state}/${label}.svg" width="18" height="18" alt=""> ${t[key]}`,
  );
  return {
    type: "markdown",
    text_only: true,
    content: `${entries.join(" &nbsp; ")}  \n${hint}`,
    grid_options: { columns: "full" },
  };
}

function heading(text, icon) {
  return { type: "heading", heading: text, icon };
}

function filterCard(entities, states, title, icon, extra = {}) {
  return {
    type: "entity-filter",
    show_empty: false,
    state_filter: states,
    card: { type: "entities", title, icon, state_color: true },
    entities: entities.map(([entity, name]) => ({ entity, name, ...extra })),
  };
}

// A line that says all is well, shown while none of the filter cards has a row to show and
// none of the listed tiles is visible: the negation of each filter and of each tile's
// visibility as a visibility condition (state filters: "==" and "<" only).
function allClear(filters, text, tiles = []) {
  const hidden = tiles.map((tile) => ({
    condition: "not",
    conditions: [{ condition: "and", conditions: tile.visibility }],
  }));
  const conditions = filters.flatMap((card) =>
    card.entities.flatMap((row) =>
      card.state_filter.map((filter) => {
        if (typeof filter === "string") {
          return { condition: "state", entity: row.entity, state_not: filter };
        }
        const attribute = filter.attribute === undefined ? {} : { attribute: filter.attribute };
        if (filter.operator === "<") {
          const below = { condition: "numeric_state", entity: row.entity, ...attribute, below: filter.value };
          return { condition: "not", conditions: [below] };
        }
        return { condition: "state", entity: row.entity, ...attribute, state_not: filter.value };
      }),
    ),
  );
  return { type: "markdown", content: text, visibility: [...conditions, ...hidden] };
}

function withoutEmpty(filters) {
  return filters.filter((card) => card.entities.length);
}

function wasteView(hass, site, t, prefix) {
  const containers = site.containers;
  const pick = (key) =>
    containers.filter((container) => container[key]).map((c) => [c[key], c.name]);
  const route = site.route;
  const tourText = [
    `{%- set stops = states('${route}') | int(0) %}`,
    `{%- set metres = state_attr('${route}', 'length_m') | float(0) %}`,
    `{%- if stops > 0 %}`,
    fill(t.tour, {
      stops: "**{{ stops }}**",
      km: "**{{ '%.1f' | format(metres / 1000) }}**",
    }),
    `{%- else %}${t.tour_empty}{%- endif %}`,
  ].join("\n");
  const alarms = withoutEmpty([
    // Without an operator the card's filter never matches: "==" is spelled out.
    filterCard(pick("fill_level"), [{ operator: "==", attribute: "alarm", value: "fire" }], t.fire, "mdi:fire-alert"),
    filterCard(pick("fill_level"), [{ operator: "==", attribute: "alarm", value: "tilted" }], t.tilted, "mdi:delete-forever"),
  ]);
  const sensorFilters = withoutEmpty([
    filterCard(
      pick("fill_level"),
      ["unavailable", "unknown"],
      t.offline,
      "mdi:access-point-network-off",
    ),
    // The battery rides on the fill level once the sensor reported one (its own entity is
    // disabled by default); a container that never did is left out, not listed as low.
    filterCard(
      containers.filter((c) => c.battery_known).map((c) => [c.fill_level, c.name]),
      [{ operator: "<", attribute: "battery", value: LOW_BATTERY }],
      t.low_battery,
      "mdi:battery-alert-variant-outline",
    ),
  ]);
  return {
    title: `${prefix}${t.waste}`,
    path: `${slug(site.name)}-waste`,
    type: "sections",
    max_columns: 3,
    sections: [
      {
        type: "grid",
        cards: [
          heading(t.route, "mdi:truck"),
          ...alarms,
          { type: "markdown", content: tourText },
          {
            type: "todo-list",
            entity: route,
            display_order: "none",
            hide_create: true,
          },
        ],
      },
      {
        type: "grid",
        column_span: 2,
        cards: [
          heading(t.map, "mdi:map-marker-radius"),
          {
            type: "map",
            default_zoom: 16,
            hours_to_show: 0,
            cluster: true,
            theme_mode: "auto",
            grid_options: { columns: "full", rows: 8 },
            // No label_mode: with one, the card would draw a label instead of the picture.
            // The name is the marker's tooltip and the title of what a tap opens.
            entities: containers.map((container) => ({
              entity: container.fill_level,
              name: container.name,
            })),
          },
          legend("waste", t.map_hint_waste, t),
        ],
      },
      {
        type: "grid",
        cards: [heading(t.sensors, "mdi:access-point-network"), ...sensorFilters, allClear(sensorFilters, t.all_reporting)],
      },
      {
        type: "grid",
        column_span: 3,
        cards: [
          heading(t.fill_levels, "mdi:gauge"),
          // The tile shows the map's marker; a tap opens the container's fill history.
          ...containers.map((container) => ({
            type: "tile",
            entity: container.fill_level,
            name: container.name,
            state_content: ["state", "fill_state", "last_changed"],
            show_entity_picture: true,
            // A third of the wall screen, the phone's full width: room for level, state, age.
            grid_options: { columns: 12 },
          })),
        ],
      },
    ],
  };
}

// A light in one of these states is listed as not reporting (with since-when).
const NOT_REPORTING = ["unavailable", "unknown"];

// One tile per mast, shown while it has a lamp fault: the fault's kind and since when, in the
// viewer's language (the integration translates the `fault_kind` values). A mast that is not
// reporting is listed there only: its lamp cannot be judged, and one problem is one row.
function faultTiles(masts) {
  return masts
    .filter((mast) => mast.lamp_fault)
    .map((mast) => ({
      type: "tile",
      entity: mast.lamp_fault,
      name: mast.name,
      state_content: ["fault_kind", "since"],
      grid_options: { columns: 12 },
      visibility: [
        { condition: "state", entity: mast.lamp_fault, state: "on" },
        ...NOT_REPORTING.map((state) => ({ condition: "state", entity: mast.light, state_not: state })),
      ],
    }));
}

// Savings of the site and of each path: now (a share of the full-power reference since
// counting began, with that start), over the last week, and per day from the long-term
// statistics of energy and reference (the gap between the two bars is that day's saving).
function energyAndSavings(site, t) {
  const figures = [
    { name: t.energy_site, savings: site.savings, energy: site.energy, reference: site.reference },
    ...site.paths.map((path) => ({ ...path, name: fill(t.energy_path, { path: path.path }) })),
  ];
  const withSavings = figures.filter((figure) => figure.savings);
  const cards = withSavings.map((figure) => ({
    type: "tile",
    entity: figure.savings,
    name: fill(t.savings_of, { name: figure.name }),
    icon: "mdi:leaf",
    state_content: ["state", "since"],
    grid_options: { columns: 12 },
  }));
  if (withSavings.length) {
    cards.push({
      type: "history-graph",
      title: t.savings_week,
      hours_to_show: 168,
      grid_options: { columns: "full" },
      entities: withSavings.map((figure) => ({ entity: figure.savings, name: figure.name })),
    });
  }
  for (const figure of figures) {
    if (!figure.energy || !figure.reference) continue;
    cards.push({
      type: "statistics-graph",
      title: fill(t.energy_per_day, { name: figure.name }),
      chart_type: "bar",
      period: "day",
      days_to_show: 30,
      stat_types: ["change"],
      grid_options: { columns: 12 },
      entities: [
        { entity: figure.energy, name: t.energy_used },
        { entity: figure.reference, name: t.energy_reference },
      ],
    });
  }
  return cards;
}

function lightingView(hass, site, t, prefix) {
  const masts = site.masts;
  const paths = new Map();
  for (const mast of masts) {
    const path = mast.path || t.no_path;
    paths.set(path, [...(paths.get(path) || []), mast]);
  }
  const pick = (key) => masts.filter((mast) => mast[key]).map((mast) => [mast[key], mast.name]);
  const offline = withoutEmpty([
    filterCard(pick("light"), NOT_REPORTING, t.offline, "mdi:lan-disconnect", {
      secondary_info: "last-changed",
    }),
  ]);
  const faults = faultTiles(masts);
  const faultsHeading = {
    ...heading(t.faults, "mdi:lightbulb-alert"),
    visibility: [
      {
        condition: "or",
        conditions: faults.map((tile) => ({ condition: "and", conditions: tile.visibility })),
      },
    ],
  };
  const energyCards = energyAndSavings(site, t);
  return {
    title: `${prefix}${t.lighting}`,
    path: `${slug(site.name)}-lighting`,
    type: "sections",
    max_columns: 3,
    sections: [
      {
        type: "grid",
        column_span: 2,
        cards: [
          heading(t.map, "mdi:map-marker-radius"),
          {
            type: "map",
            default_zoom: 16,
            hours_to_show: 0,
            cluster: true,
            theme_mode: "auto",
            grid_options: { columns: "full", rows: 8 },
            entities: masts.map((mast) => ({ entity: mast.light, name: mast.name })),
          },
          legend("lighting", t.map_hint_lighting, t),
        ],
      },
      {
        type: "grid",
        cards: [
          heading(t.attention, "mdi:alert-circle-outline"),
          ...offline,
          ...(faults.length ? [faultsHeading, ...faults] : []),
          allClear(offline, t.all_clear, faults),
          ...withoutEmpty([filterCard(pick("motion"), ["on"], t.motion, "mdi:walk")]),
        ],
      },
      ...[...paths].map(([path, members]) => ({
        type: "grid",
        cards: [
          heading(path, "mdi:map-marker-path"),
          ...members.map((mast) => ({
            type: "tile",
            entity: mast.light,
            name: mast.name,
            state_content: ["state", "brightness"],
            show_entity_picture: true,
            grid_options: { columns: 6 },
          })),
        ],
      })),
      {
        type: "grid",
        column_span: 3,
        cards: [heading(t.energy, "mdi:lightning-bolt"), ...energyCards],
      },
    ],
  };
}

// Upcoming pickups and due returns of a site, soonest first (the template runs in the backend).
function nextTemplate(banks, t) {
  const rows = banks.flatMap((bank) =>
    bank.compartments.map(
      (c) => `('${c.loan_state}', '${bank.name.replace(/'/g, "\\'")}', ${c.number})`,
    ),
  );
  return [
    `{%- set ns = namespace(rows=[]) %}`,
    `{%- for entity, bank, number in [${rows.join(", ")}] %}`,
    `{%- set s = states[entity] %}`,
    `{%- if s and s.state in ['reserved', 'on_loan', 'overdue'] %}`,
    `{%- set until = s.attributes.pickup_until if s.state == 'reserved' else s.attributes.loan_until %}`,
    `{%- if until %}{%- set ns.rows = ns.rows + [(as_timestamp(until), s.state, bank, number, s.attributes.item, until)] %}{%- endif %}`,
    `{%- endif %}`,
    `{%- endfor %}`,
    `{%- for at, state, bank, number, item, until in ns.rows | sort %}`,
    `- **{{ as_datetime(until) | as_local | as_timestamp | timestamp_custom('%d.%m. %H:%M') }}** · ` +
      `{{ {'reserved': '${t.pickup}', 'on_loan': '${t.due_back}', 'overdue': '${t.overdue_since}'}[state] }} · ` +
      `{{ bank }} · ${fill(t.compartment, { number: "{{ number }}", item: "{{ item }}" })}`,
    `{%- else %}`,
    t.next_none,
    `{%- endfor %}`,
  ].join("\n");
}

function lockersView(hass, site, t, prefix) {
  const banks = site.banks;
  const compartments = banks.flatMap((bank) =>
    bank.compartments.map((c) => ({ ...c, bank: bank.name })),
  );
  const named = (c) =>
    `${c.bank} · ${fill(t.compartment, { number: c.number, item: c.item })}`;
  const doors = banks.flatMap((bank) => bank.doors.map((door) => [door, undefined]));
  const troubles = withoutEmpty([
    filterCard(
      compartments.map((c) => [c.loan_state, named(c)]),
      ["overdue"],
      t.overdue,
      "mdi:clock-alert-outline",
    ),
    filterCard(doors, ["on"], t.doors_open, "mdi:door-open"),
    filterCard(
      compartments.map((c) => [c.loan_state, named(c)]),
      ["out_of_service"],
      t.out_of_service,
      "mdi:wrench-clock",
    ),
  ]);
  return {
    title: `${prefix}${t.lockers}`,
    path: `${slug(site.name)}-lockers`,
    type: "sections",
    max_columns: 3,
    sections: [
      {
        type: "grid",
        cards: [
          heading(t.next, "mdi:calendar-clock"),
          { type: "markdown", content: nextTemplate(banks, t) },
          heading(t.attention, "mdi:alert-circle-outline"),
          ...troubles,
          allClear(troubles, t.all_clear),
        ],
      },
      ...banks.map((bank) => {
        const items = new Map();
        for (const c of bank.compartments) items.set(c.item_type, c.item || c.item_type);
        const perType = [
          `{%- set counts = state_attr('${bank.items_available}', 'by_item_type') or {} %}`,
          ...[...items].map(
            ([type, item]) =>
              `{%- if '${type}' in counts %}\n- ${fill(t.per_type, { item, count: `{{ counts['${type}'] }}` })}{%- endif %}`,
          ),
          `{%- if not counts %}${t.nothing_to_lend}{%- endif %}`,
        ].join("\n");
        return {
          type: "grid",
          cards: [
            heading(bank.name, "mdi:locker-multiple"),
            {
              type: "tile",
              entity: bank.items_available,
              name: t.available,
              grid_options: { columns: 12 },
            },
            { type: "markdown", content: perType },
            // Each compartment: what it does now and, while booked, until when.
            ...bank.compartments.map((c) => ({
              type: "tile",
              entity: c.loan_state,
              name: fill(t.compartment, { number: c.number, item: c.item }),
              state_content: ["state", "pickup_until", "loan_until"],
              grid_options: { columns: 12 },
            })),
          ],
        };
      }),
      {
        type: "grid",
        column_span: 3,
        cards: [
          heading(t.reservations, "mdi:calendar"),
          {
            type: "calendar",
            initial_view: "listWeek",
            grid_options: { columns: "full" },
            entities: banks.map((bank) => bank.reservations).filter(Boolean),
          },
        ],
      },
    ],
  };
}

function emptyView(site, t, prefix) {
  return {
    title: `${prefix}${t.empty_site}`,
    path: slug(site.name) || "site",
    cards: [{ type: "markdown", title: site.name, content: t.empty_site_text }],
  };
}

export function generateDashboard(config, hass) {
  const t = texts(hass);
  let sites = siteModel(hass);
  // `site: North` for one site, `sites: [North, South]` for the districts a crew serves.
  const wanted = [config?.site, ...(config?.sites || [])].filter(Boolean);
  if (wanted.length) sites = sites.filter((site) => wanted.includes(site.name));
  const views = [];
  for (const site of sites) {
    const prefix = sites.length > 1 ? `${site.name} · ` : "";
    const before = views.length;
    if (site.containers.length && site.route) views.push(wasteView(hass, site, t, prefix));
    if (site.masts.length) views.push(lightingView(hass, site, t, prefix));
    if (site.banks.length) views.push(lockersView(hass, site, t, prefix));
    if (views.length === before) views.push(emptyView(site, t, prefix));
  }
  if (!views.length) {
    views.push(emptyView({ name: t.title }, t, ""));
  }
  return { title: t.title, views };
}

export class CityOpsDashboardStrategy {
  static async generate(config, hass) {
    return generateDashboard(config, hass);
  }

  static shouldRegenerate(config, oldHass, newHass) {
    return (
      oldHass.entities !== newHass.entities ||
      oldHass.devices !== newHass.devices ||
      fingerprint(oldHass) !== fingerprint(newHass)
    );
  }
}

function register() {
  if (window.customElements.get("ll-strategy-dashboard-city-ops")) return;
  window.customElements.define(
    "ll-strategy-dashboard-city-ops",
    class extends HTMLElement {
      static generate = CityOpsDashboardStrategy.generate;
      static shouldRegenerate = CityOpsDashboardStrategy.shouldRegenerate;
    },
  );
  // Offered in Settings › Dashboards › Add dashboard.
  window.customStrategies = window.customStrategies || [];
  window.customStrategies.push({
    type: "city-ops",
    strategyType: "dashboard",
    name: "City Operations",
    description: "Waste, lighting and lockers of every site, generated from its assets.",
  });
}

if (typeof window !== "undefined" && window.customElements) {
  // The page imports this module beside the app, and the app replaces window.customElements
  // with a scoped registry: an element defined before that is invisible to the frontend.
  // Once <home-assistant> is defined, the app's registry is the one in place.
  window.customElements.whenDefined("home-assistant").then(register);
}

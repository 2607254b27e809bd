// The dashboard strategy's generation logic, run under Node with a small fake `hass`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { loadStrategy } from "./load.mjs";

const strategy = await loadStrategy();
const { CityOpsDashboardStrategy, LEGENDS, TEXTS } = strategy;

// A fake hass in the frontend's shapes: entities from the display registry, devices from the
// device registry, states by entity id. Entity ids are deliberately unlike their names.
function fakeHass(language = "de") {
  const hass = { locale: { language }, entities: {}, devices: {}, states: {} };
  let counter = 0;
  const device = (name, via) => {
    const id = `dev${++counter}`;
    hass.devices[id] = { id, name, name_by_user: null, via_device_id: via ?? null };
    return id;
  };
  const entity = (deviceId, key, state, attributes = {}, platform = "city_ops") => {
    const entityId = `${key === "light" ? "light" : "sensor"}.x${++counter}`;
    hass.entities[entityId] = {
      entity_id: entityId,
      device_id: deviceId,
      platform,
      translation_key: key,
    };
    hass.states[entityId] = { entity_id: entityId, state, attributes };
    return entityId;
  };
  const site = (name) => {
    const id = device(name);
    entity(id, "collection_route", "1", { length_m: 2300 });
    entity(id, "containers_due", "1");
    entity(id, "lighting_energy", "1.5");
    entity(id, "lighting_reference_energy", "5.0");
    entity(id, "lighting_savings", "70.0", { since: "2026-12-01T16:00:00+00:00" });
    return id;
  };
  // A path's figures, on the site's device as the integration creates them.
  const path = (siteId, name, savings) => ({
    savings: entity(siteId, "path_savings", savings, { path: name, since: "2026-12-01T16:00:00+00:00" }),
    energy: entity(siteId, "path_energy", "0.4", { path: name }),
    reference: entity(siteId, "path_reference_energy", "1.2", { path: name }),
  });
  // As a site creates it: the fill level carries fill state, alarm and battery; other
  // entities (`extra`, e.g. an enabled fill state or fire alarm) only where a test says so.
  const container = (siteId, name, level, fillState, extra = {}, alarm = "none", battery = null) => {
    const id = device(name, siteId);
    const ids = {
      fill_level: entity(id, "fill_level", String(level), { fill_state: fillState, alarm, battery }),
    };
    for (const [key, state] of Object.entries(extra)) ids[key] = entity(id, key, state);
    return ids;
  };
  const mast = (siteId, name, path, state, attributes = {}) => {
    const id = device(name, siteId);
    return {
      light: entity(id, "light", state, { path, commanded_level: 40, ...attributes }),
      lamp_fault: entity(id, "lamp_fault", "off"),
      energy: entity(id, "energy", "0.2"),
    };
  };
  const bank = (siteId, name, compartments) => {
    const id = device(name, siteId);
    const ids = { items_available: entity(id, "items_available", "1", { by_item_type: {} }) };
    ids.reservations = entity(id, "reservations", "off");
    ids.loan_states = compartments.map(([number, item, itemType, state]) =>
      entity(id, "loan_state", state, { compartment: number, item, item_type: itemType }),
    );
    ids.doors = compartments.map(() => entity(id, "door", "off"));
    return ids;
  };
  return { hass, site, path, container, mast, bank, entity, device };
}

function cards(node, type, found = []) {
  if (Array.isArray(node)) node.forEach((item) => cards(item, type, found));
  else if (node && typeof node === "object") {
    if (node.type === type) found.push(node);
    Object.values(node).forEach((value) => cards(value, type, found));
  }
  return found;
}

function entityIds(node, found = new Set()) {
  if (Array.isArray(node)) node.forEach((item) => entityIds(item, found));
  else if (node && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "entity" && typeof value === "string") found.add(value);
      else if (key === "entities" && Array.isArray(value))
        value.forEach((item) => (typeof item === "string" ? found.add(item) : entityIds(item, found)));
      else entityIds(value, found);
    }
  }
  return found;
}

test("one site gets Waste, Lighting and Lockers views in German", async () => {
  const fake = fakeHass("de");
  const park = fake.site("Stadtpark Süd");
  const bin = fake.container(park, "Rosengarten", 91, "full", {}, "fire");
  const meadow = fake.container(park, "Hundewiese", 12, "empty");
  fake.mast(park, "Mast 1", "Hauptweg", "on");
  fake.bank(park, "Ausleihe Nord", [[1, "Rollator", "walker", "available"]]);

  const dashboard = await CityOpsDashboardStrategy.generate({}, fake.hass);

  assert.deepEqual(
    dashboard.views.map((view) => [view.path, view.title]),
    [
      ["stadtpark-sued-waste", "Abfall"],
      ["stadtpark-sued-lighting", "Beleuchtung"],
      ["stadtpark-sued-lockers", "Schließfächer"],
    ],
  );
  const waste = dashboard.views[0];
  const [map] = cards(waste, "map");
  // Each container by name, its marker the fill level's picture (a label mode would hide it).
  assert.deepEqual(map.entities, [
    { entity: meadow.fill_level, name: "Hundewiese" },
    { entity: bin.fill_level, name: "Rosengarten" },
  ]);
  assert.deepEqual(
    cards(waste, "tile").map((tile) => [tile.name, tile.entity, tile.show_entity_picture]),
    [
      ["Hundewiese", meadow.fill_level, true],
      ["Rosengarten", bin.fill_level, true],
    ],
  );
  // The fire alarm comes before the route.
  const first = waste.sections[0].cards.map((card) => card.card?.title ?? card.type);
  assert.deepEqual(first.slice(0, 3), ["heading", TEXTS.de.fire, TEXTS.de.tilted]);
  const [fire] = cards(waste, "entity-filter");
  assert.deepEqual(fire.state_filter, [{ operator: "==", attribute: "alarm", value: "fire" }]);
  assert.ok(entityIds(fire).has(bin.fill_level));
  const headings = cards(dashboard, "heading").map((card) => card.heading);
  for (const english of ["Waste", "Lighting", "Lockers", "Collection route", "Map"]) {
    assert.ok(!headings.includes(english), english);
  }
});

test("the viewing user's language picks the texts, English as the fallback", async () => {
  for (const [language, title] of [
    ["en", "Waste"],
    ["en-GB", "Waste"],
    ["de-CH", "Abfall"],
    ["fr", "Waste"],
  ]) {
    const fake = fakeHass(language);
    fake.container(fake.site("Park"), "Bin", 10, "ok");
    const dashboard = await CityOpsDashboardStrategy.generate({}, fake.hass);
    assert.equal(dashboard.views[0].title, title, language);
  }
});

test("two sites each get their own views with their own assets only", async () => {
  const fake = fakeHass("en");
  const north = fake.site("North Park");
  const south = fake.site("South Park");
  const a = fake.container(north, "Bin North", 50, "ok");
  const b = fake.container(south, "Bin South", 50, "ok");
  fake.mast(south, "Mast South", "Lakeside", "off");

  const dashboard = await CityOpsDashboardStrategy.generate({}, fake.hass);

  assert.deepEqual(
    dashboard.views.map((view) => view.path),
    ["north-park-waste", "south-park-waste", "south-park-lighting"],
  );
  assert.equal(dashboard.views[0].title, "North Park · Waste");
  assert.ok(entityIds(dashboard.views[0]).has(a.fill_level));
  assert.ok(!entityIds(dashboard.views[0]).has(b.fill_level));
  assert.ok(entityIds(dashboard.views[1]).has(b.fill_level));
  const only = await CityOpsDashboardStrategy.generate({ site: "South Park" }, fake.hass);
  assert.deepEqual(
    only.views.map((view) => view.title),
    ["Waste", "Lighting"],
  );
});

test("a crew's dashboard spans the districts it serves and no other", async () => {
  const fake = fakeHass("en");
  const north = fake.site("North");
  const east = fake.site("East");
  const south = fake.site("South");
  fake.container(north, "Bin North", 50, "ok");
  const e = fake.container(east, "Bin East", 50, "ok");
  const s = fake.container(south, "Bin South", 50, "ok");

  const crew = await CityOpsDashboardStrategy.generate({ sites: ["South", "East"] }, fake.hass);

  assert.deepEqual(
    crew.views.map((view) => view.title),
    ["East · Waste", "South · Waste"],
  );
  const used = entityIds(crew);
  assert.ok(used.has(e.fill_level) && used.has(s.fill_level));
  assert.equal(crew.views.length, 2);
});

test("entities of other integrations and entities without a state are left out", async () => {
  const fake = fakeHass("en");
  const park = fake.site("Park");
  const bin = fake.container(park, "Bin", 30, "ok", {}, "none", 80);
  // A temperature the sensor never reported has no entity state; another integration's
  // entity on our device (a template, say) must not be mistaken for ours.
  const device = fake.hass.entities[bin.fill_level].device_id;
  const temperature = fake.entity(device, "temperature", "21");
  delete fake.hass.states[temperature];
  const foreign = fake.entity(device, "tilt", "on", {}, "template");

  const dashboard = await CityOpsDashboardStrategy.generate({}, fake.hass);
  const used = entityIds(dashboard);

  assert.ok(used.has(bin.fill_level));
  assert.ok(!used.has(temperature));
  assert.ok(!used.has(foreign));
  for (const entityId of used) assert.ok(fake.hass.states[entityId], entityId);
  // The tilt list watches our fill levels' alarm, never the foreign tilt entity.
  const tilted = cards(dashboard, "entity-filter").find((card) => card.card.title === "Tilted");
  assert.deepEqual(
    tilted.entities.map((row) => row.entity),
    [bin.fill_level],
  );
});

test("every mast on the map by name, offline ones too; the legend pictures each lamp state", async () => {
  const fake = fakeHass("de");
  const park = fake.site("Park");
  fake.mast(park, "A boosted", "Path", "on", { boost_until: "2026-12-03T20:00:00+00:00" });
  fake.mast(park, "B base", "Path", "on");
  fake.mast(park, "C dark", "Path", "off");
  const faulty = fake.mast(park, "D fault", "Path", "on");
  fake.hass.states[faulty.lamp_fault].state = "on";
  fake.mast(park, "E offline", "Path", "unavailable");

  const dashboard = await CityOpsDashboardStrategy.generate({}, fake.hass);
  const [map] = cards(dashboard, "map");

  assert.deepEqual(
    map.entities.map((row) => [row.name, row.label_mode]),
    [
      ["A boosted", undefined],
      ["B base", undefined],
      ["C dark", undefined],
      ["D fault", undefined],
      ["E offline", undefined],
    ],
  );
  const lightTiles = cards(dashboard, "tile").filter((tile) => tile.entity.startsWith("light."));
  assert.equal(lightTiles.length, 5);
  assert.ok(lightTiles.every((tile) => tile.show_entity_picture === true));
  // The five lamp states, each with its picture and its German word.
  assert.deepEqual(
    LEGENDS.lighting.map(([state]) => state),
    ["boosted", "base", "dark", "fault", "offline"],
  );
  const legend = cards(dashboard, "markdown").find((card) => card.content.includes("/city_ops/marker/"));
  for (const [state, label, key] of LEGENDS.lighting) {
    assert.ok(legend.content.includes(`src="/city_ops/marker/${state}/${label}.svg"`), state);
    assert.ok(legend.content.includes(TEXTS.de[key]), key);
  }
  assert.ok(legend.content.includes(TEXTS.de.map_hint_lighting));
  const offline = cards(dashboard, "entity-filter").find((card) => card.card.title === TEXTS.de.offline);
  assert.equal(offline.entities.find((row) => row.name === "E offline").secondary_info, "last-changed");
  const fault = cards(dashboard, "tile").find((tile) => tile.entity === faulty.lamp_fault);
  assert.deepEqual(fault.state_content, ["fault_kind", "since"]);
});

// The visibility conditions of the frontend (state, not, and, or), evaluated on a fake hass.
function holds(condition, hass) {
  switch (condition.condition) {
    case "state": {
      const state = hass.states[condition.entity];
      const value = condition.attribute ? state?.attributes[condition.attribute] : state?.state;
      if ("state_not" in condition) return value !== condition.state_not;
      return value === condition.state;
    }
    case "numeric_state": {
      const state = hass.states[condition.entity];
      const value = Number(condition.attribute ? state?.attributes[condition.attribute] : state?.state);
      return value < condition.below;
    }
    case "not":
      return !condition.conditions.every((inner) => holds(inner, hass));
    case "and":
      return condition.conditions.every((inner) => holds(inner, hass));
    case "or":
      return condition.conditions.some((inner) => holds(inner, hass));
    default:
      throw new Error(`condition ${condition.condition}`);
  }
}

function visible(card, hass) {
  return (card.visibility || []).every((condition) => holds(condition, hass));
}

test("a lamp fault is listed with its kind and since when; a mast not reporting only once", async () => {
  const fake = fakeHass("de");
  const park = fake.site("Park");
  const dead = fake.mast(park, "Mast See 05", "See", "on");
  const gone = fake.mast(park, "Mast See 06", "See", "on");
  const fine = fake.mast(park, "Mast See 07", "See", "on");
  const set = (entityId, state, attributes = {}) => {
    fake.hass.states[entityId] = { ...fake.hass.states[entityId], state, attributes };
  };
  set(dead.lamp_fault, "on", { fault_kind: "lamp_failure", since: "2026-12-03T16:20:00+00:00" });
  // Zigbee2MQTT says the mast is gone: its light is unavailable, its fault sensor says why.
  set(gone.lamp_fault, "on", { fault_kind: "no_communication", since: "2026-12-03T16:25:00+00:00" });
  set(gone.light, "unavailable");

  const dashboard = await CityOpsDashboardStrategy.generate({}, fake.hass);
  const attention = dashboard.views[0].sections[1].cards;
  const shown = attention.filter((card) => visible(card, fake.hass));
  const tiles = shown.filter((card) => card.type === "tile");
  assert.deepEqual(
    tiles.map((tile) => [tile.name, tile.entity, tile.state_content]),
    [["Mast See 05", dead.lamp_fault, ["fault_kind", "since"]]],
  );
  // The mast that is gone is a row of the not-reporting list, and nowhere else.
  const offline = shown.find((card) => card.card?.title === TEXTS.de.offline);
  assert.deepEqual(offline.entities.map((row) => row.entity), [dead.light, gone.light, fine.light]);
  assert.deepEqual(offline.state_filter, ["unavailable", "unknown"]);
  const listed = [gone.light, dead.light, fine.light].filter((entityId) =>
    offline.state_filter.includes(fake.hass.states[entityId].state),
  );
  assert.deepEqual(listed, [gone.light]);
  assert.ok(shown.some((card) => card.heading === TEXTS.de.faults));
  assert.ok(!shown.some((card) => card.content === TEXTS.de.all_clear));

  // Back online: the light reports again and its fault is gone; the dead lamp stays.
  set(gone.light, "on");
  set(gone.lamp_fault, "off", { fault_kind: null, since: null });
  let now = attention.filter((card) => visible(card, fake.hass));
  assert.deepEqual(now.filter((card) => card.type === "tile").map((tile) => tile.name), ["Mast See 05"]);
  // Repaired: no fault heading, the all-clear line instead.
  set(dead.lamp_fault, "off", { fault_kind: null, since: null });
  now = attention.filter((card) => visible(card, fake.hass));
  assert.ok(!now.some((card) => card.type === "tile" || card.heading === TEXTS.de.faults));
  assert.ok(now.some((card) => card.content === TEXTS.de.all_clear));
});

test("a new entity or language regenerates the dashboard, a state change does not", async () => {
  const fake = fakeHass("en");
  const park = fake.site("Park");
  const bin = fake.container(park, "Bin", 30, "ok");
  const before = fake.hass;
  const withState = (entityId, state) => ({
    ...before,
    states: { ...before.states, [entityId]: { ...before.states[entityId], state } },
  });

  assert.equal(
    CityOpsDashboardStrategy.shouldRegenerate({}, before, withState(bin.fill_level, "31")),
    false,
  );
  const withAttributes = (entityId, attributes) => ({
    ...before,
    states: {
      ...before.states,
      [entityId]: {
        ...before.states[entityId],
        attributes: { ...before.states[entityId].attributes, ...attributes },
      },
    },
  });
  // The marker pictures follow fill state and alarm on their own: no new dashboard (and no
  // map reset under the operator's fingers).
  for (const attributes of [{ fill_state: "full" }, { alarm: "tilted" }]) {
    assert.equal(
      CityOpsDashboardStrategy.shouldRegenerate({}, before, withAttributes(bin.fill_level, attributes)),
      false,
    );
  }
  // An optional entity (a temperature the sensor starts to report) gets its state.
  const device = before.entities[bin.fill_level].device_id;
  const temperature = fake.entity(device, "temperature", "21");
  const after = { ...fake.hass, entities: { ...fake.hass.entities } };
  const without = { ...after.states };
  delete without[temperature];
  assert.equal(
    CityOpsDashboardStrategy.shouldRegenerate({}, { ...after, states: without }, after),
    true,
  );
  assert.equal(
    CityOpsDashboardStrategy.shouldRegenerate({}, before, { ...before, locale: { language: "de" } }),
    true,
  );
  assert.equal(
    CityOpsDashboardStrategy.shouldRegenerate({}, before, { ...before, entities: { ...before.entities } }),
    true,
  );
});

test("low batteries: containers that reported one, read from the fill level; all clear otherwise", async () => {
  const fake = fakeHass("en");
  const park = fake.site("Park");
  const bin = fake.container(park, "Bin", 30, "ok", {}, "none", 80);
  const silent = fake.container(park, "Never told", 30, "ok");
  const dashboard = await CityOpsDashboardStrategy.generate({}, fake.hass);
  const low = cards(dashboard, "entity-filter").find((card) => card.card.title === TEXTS.en.low_battery);
  // The entities card evaluates `null < 20` as true: a container without a battery is not a row.
  assert.deepEqual(low.entities.map((row) => row.entity), [bin.fill_level]);
  assert.deepEqual(low.state_filter, [{ operator: "<", attribute: "battery", value: 20 }]);
  const line = cards(dashboard, "markdown").find((card) => card.content === TEXTS.en.all_reporting);
  assert.deepEqual(line.visibility, [
    { condition: "state", entity: bin.fill_level, state_not: "unavailable" },
    { condition: "state", entity: bin.fill_level, state_not: "unknown" },
    { condition: "state", entity: silent.fill_level, state_not: "unavailable" },
    { condition: "state", entity: silent.fill_level, state_not: "unknown" },
    {
      condition: "not",
      conditions: [
        { condition: "numeric_state", entity: bin.fill_level, attribute: "battery", below: 20 },
      ],
    },
  ]);
  // A first battery report regenerates the dashboard (the container joins the list).
  const reported = {
    ...fake.hass,
    states: {
      ...fake.hass.states,
      [silent.fill_level]: {
        ...fake.hass.states[silent.fill_level],
        attributes: { ...fake.hass.states[silent.fill_level].attributes, battery: 55 },
      },
    },
  };
  assert.equal(CityOpsDashboardStrategy.shouldRegenerate({}, fake.hass, reported), true);
});

test("a site without assets says how to add them; no sites at all still renders", async () => {
  const fake = fakeHass("de");
  fake.site("Leerer Park");
  let dashboard = await CityOpsDashboardStrategy.generate({}, fake.hass);
  assert.equal(dashboard.views.length, 1);
  assert.equal(dashboard.views[0].cards[0].title, "Leerer Park");
  assert.equal(dashboard.views[0].cards[0].content, TEXTS.de.empty_site_text);

  dashboard = await CityOpsDashboardStrategy.generate({}, fakeHass("en").hass);
  assert.equal(dashboard.views[0].title, TEXTS.en.empty_site);
});

test("lockers: compartments in number order with their item and due-back time", async () => {
  const fake = fakeHass("en");
  const park = fake.site("Park");
  const bank = fake.bank(park, "Locker Lake", [
    [2, "Hand cart", "hand_cart", "on_loan"],
    [1, "Walker", "walker", "overdue"],
  ]);

  const dashboard = await CityOpsDashboardStrategy.generate({}, fake.hass);
  const tiles = cards(dashboard, "tile").filter((tile) => tile.entity !== bank.items_available);

  assert.deepEqual(
    tiles.map((tile) => [tile.name, tile.state_content]),
    [
      ["Compartment 1 · Walker", ["state", "pickup_until", "loan_until"]],
      ["Compartment 2 · Hand cart", ["state", "pickup_until", "loan_until"]],
    ],
  );
  const overdue = cards(dashboard, "entity-filter").find((card) => card.card.title === "Overdue loans");
  assert.deepEqual(overdue.state_filter, ["overdue"]);
  assert.equal(overdue.entities[0].name, "Locker Lake · Compartment 1 · Walker");
  const [calendar] = cards(dashboard, "calendar");
  assert.deepEqual(calendar.entities, [bank.reservations]);
});

test("energy and savings of the site and of each path, now, over the week and per day", async () => {
  const fake = fakeHass("de");
  const park = fake.site("Park");
  fake.mast(park, "Mast See 1", "Seeweg", "on");
  fake.mast(park, "Mast Allee 1", "Allee", "on");
  fake.mast(park, "Mast Wiese", "", "on");
  const lake = fake.path(park, "Seeweg", "62.5");
  const avenue = fake.path(park, "Allee", "71.0");
  const siteKeys = Object.values(fake.hass.entities).filter((e) => e.device_id === park);
  const siteOf = (key) => siteKeys.find((e) => e.translation_key === key).entity_id;

  const dashboard = await CityOpsDashboardStrategy.generate({}, fake.hass);
  const lighting = dashboard.views.find((view) => view.path === "park-lighting");
  const section = lighting.sections.find((s) => s.cards[0].heading === TEXTS.de.energy);
  const kinds = section.cards.map((card) => card.type);
  assert.deepEqual(kinds, [
    "heading",
    "tile",
    "tile",
    "tile",
    "history-graph",
    "statistics-graph",
    "statistics-graph",
    "statistics-graph",
  ]);
  // Now: the share saved and since when it is counted, the site first, then paths by name.
  const tiles = section.cards.filter((card) => card.type === "tile");
  assert.deepEqual(
    tiles.map((tile) => [tile.name, tile.entity, tile.state_content]),
    [
      ["Ersparnis · Standort", siteOf("lighting_savings"), ["state", "since"]],
      ["Ersparnis · Weg Allee", avenue.savings, ["state", "since"]],
      ["Ersparnis · Weg Seeweg", lake.savings, ["state", "since"]],
    ],
  );
  // Over time: the savings of the site and of each path in one week's graph.
  const [week] = cards(section, "history-graph");
  assert.equal(week.title, TEXTS.de.savings_week);
  assert.deepEqual(week.entities.map((row) => row.name), ["Standort", "Weg Allee", "Weg Seeweg"]);
  // Per day, from the long-term statistics: energy used beside the full-power reference.
  const daily = cards(section, "statistics-graph");
  assert.deepEqual(
    daily.map((graph) => [graph.title, graph.entities.map((row) => row.entity)]),
    [
      ["Standort: Energie pro Tag", [siteOf("lighting_energy"), siteOf("lighting_reference_energy")]],
      ["Weg Allee: Energie pro Tag", [avenue.energy, avenue.reference]],
      ["Weg Seeweg: Energie pro Tag", [lake.energy, lake.reference]],
    ],
  );
  for (const graph of daily) {
    assert.deepEqual(
      [graph.period, graph.stat_types, graph.chart_type],
      ["day", ["change"], "bar"],
    );
    assert.deepEqual(graph.entities.map((row) => row.name), [TEXTS.de.energy_used, TEXTS.de.energy_reference]);
  }
  // In English for an English profile.
  fake.hass.locale = { language: "en" };
  const english = await CityOpsDashboardStrategy.generate({}, fake.hass);
  const titles = cards(english, "statistics-graph").map((graph) => graph.title);
  assert.deepEqual(titles, ["Site: energy per day", "Path Allee: energy per day", "Path Seeweg: energy per day"]);
});

test("a site whose masts are on no path shows the site's figures only", async () => {
  const fake = fakeHass("en");
  const park = fake.site("Park");
  fake.mast(park, "Lonely", "", "on");
  const dashboard = await CityOpsDashboardStrategy.generate({}, fake.hass);
  assert.deepEqual(
    cards(dashboard, "statistics-graph").map((graph) => graph.title),
    ["Site: energy per day"],
  );
  assert.equal(cards(dashboard, "history-graph")[0].entities.length, 1);
});

test("every text exists in German and English", () => {
  assert.deepEqual(Object.keys(TEXTS.de).sort(), Object.keys(TEXTS.en).sort());
});

// Reads a `hass` snapshot (registries and states as the frontend holds them) on stdin and
// prints what the strategy generates for it: {"dashboard": ..., "fingerprint": ...}.
import { loadStrategy } from "./load.mjs";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { hass, config } = JSON.parse(Buffer.concat(chunks).toString("utf-8"));
const strategy = await loadStrategy();
const dashboard = await strategy.CityOpsDashboardStrategy.generate(config || {}, hass);
process.stdout.write(
  JSON.stringify({ dashboard, fingerprint: strategy.fingerprint(hass), texts: strategy.TEXTS }),
);

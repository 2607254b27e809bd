// Loads the strategy module the integration serves, as the browser would (an ES module).
import { readFile } from "node:fs/promises";

const MODULE = new URL(
  "../../custom_components/city_ops/frontend/city-ops-strategy.js",
  import.meta.url,
);

export async function loadStrategy() {
  const source = await readFile(MODULE, "utf-8");
  return import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`);
}

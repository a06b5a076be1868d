/**
 * The narrated scenario against a system that is already running, such as
 * the one docker-compose.yml starts (its `demo` service runs this):
 *
 *   USER_SERVICE_URL=http://user-service:50051 ORDER_SERVICE_URL=... \
 *   PAYMENT_SERVICE_URL=... node apps/demo/dist/against.js
 *
 * It waits until every service reports SERVING, tells the story, and exits
 * 0 when every claim it made held, 1 when one did not.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createHealthProbe, env, loadConfig, neighbourUrl } from "@meridian/platform";
import { runScenario } from "./scenario.js";
import { type ServiceName, serviceNames } from "./system.js";

const config = loadConfig({
  USER_SERVICE_URL: neighbourUrl("http://127.0.0.1:50051"),
  ORDER_SERVICE_URL: neighbourUrl("http://127.0.0.1:50052"),
  PAYMENT_SERVICE_URL: neighbourUrl("http://127.0.0.1:50053"),
  /** How long to wait for the services to report SERVING. */
  WAIT_FOR_SERVING_MS: env.int(120_000, { min: 0, max: 3_600_000 }),
});
const urls: Record<ServiceName, string> = {
  "user-service": config.USER_SERVICE_URL,
  "order-service": config.ORDER_SERVICE_URL,
  "payment-service": config.PAYMENT_SERVICE_URL,
};

async function waitUntilServing(name: ServiceName): Promise<void> {
  const probe = createHealthProbe(urls[name]);
  const deadline = Date.now() + config.WAIT_FOR_SERVING_MS;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    try {
      last = await probe(1000);
      if (last === "SERVING") return;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(500);
  }
  throw new Error(`${name} at ${urls[name]} is not SERVING (${last})`);
}

try {
  await Promise.all(serviceNames.map(waitUntilServing));
  console.log(`Running the scenario against ${Object.values(urls).join(", ")}`);
  await runScenario({ urls, print: (line) => console.log(line) });
  console.log("\nScenario complete.");
  process.exit(0);
} catch (error) {
  console.error(`\nThe demo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

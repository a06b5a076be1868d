/**
 * npm run demo: the three services on the embedded database, the narrated
 * scenario, then the system left running for you to call until Ctrl-C.
 *
 *   npm run demo                  build, run the scenario, keep the system up
 *   npm run demo -- --exit        run the scenario, then stop
 *   npm run demo -- --no-build    use the services as last built
 *
 * Data (PGlite databases, development signing keys, logs) lives under
 * .data/demo; delete it for a fresh start.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { parseArgs } from "node:util";
import { runScenario, tryItYourself } from "./scenario.js";
import { type ServiceName, startSystem } from "./system.js";

const { values: flags } = parseArgs({
  options: {
    exit: { type: "boolean", default: false },
    "no-build": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (flags.help) {
  console.log(
    "usage: npm run demo [-- --exit] [-- --no-build]\n" +
      "  --exit      stop after the scenario instead of running until Ctrl-C\n" +
      "  --no-build  use the services as last built",
  );
  process.exit(0);
}

const root = path.resolve(import.meta.dirname, "../../..");

if (!flags["no-build"]) {
  // The services run as built code, as in production. Nx rebuilds only what
  // changed; its output is shown only when the build fails.
  console.log("Building the services (nx run-many -t build)…");
  const build = spawnSync(
    path.join(root, "node_modules", ".bin", "nx"),
    ["run-many", "-t", "build", "-p", "user-service,order-service,payment-service"],
    { cwd: root, encoding: "utf8", env: { ...process.env, NX_DAEMON: "false" } },
  );
  if (build.status !== 0) {
    console.error(build.stdout, build.stderr);
    console.error("The build failed; see above.");
    process.exit(1);
  }
}
const dataDir = path.join(root, ".data", "demo");
const ports: Record<ServiceName, number> = {
  "user-service": 50051,
  "order-service": 50052,
  "payment-service": 50053,
};
const admin = { email: "admin@meridian.example", password: "meridian-admin" };

console.log(
  "Starting user-service :50051, order-service :50052 and payment-service :50053 on PGlite…",
);
console.log(
  `(service logs: ${path.relative(process.cwd(), path.join(dataDir, "logs"))}/<service>.log)`,
);
const started = performance.now();
const system = await startSystem({ dataDir, logDir: path.join(dataDir, "logs"), ports, admin });
console.log(`All three are SERVING after ${((performance.now() - started) / 1000).toFixed(1)} s.`);

let stopping = false;
const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  console.log("\nStopping the services (graceful: in-flight calls finish, watch streams end)…");
  await system.stop();
  process.exit(code);
};
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

try {
  const result = await runScenario({ urls: system.urls, print: (line) => console.log(line) });
  console.log("");
  if (flags.exit) {
    console.log("Scenario complete.");
    await stop(0);
  } else {
    for (const line of tryItYourself(system.urls, result)) console.log(line);
    console.log(`\nAdmin: ${admin.email} / ${admin.password}`);
  }
} catch (error) {
  console.error(`\nThe demo failed: ${error instanceof Error ? error.message : String(error)}`);
  console.error(`Service logs are in ${path.join(dataDir, "logs")}.`);
  await stop(1);
}

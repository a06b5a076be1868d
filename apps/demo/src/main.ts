/**
 * npm run demo: the three services on the embedded database, the narrated
 * scenario, then the system left running for you to call until Ctrl-C.
 *
 *   npm run demo                  build, run the scenario, keep the system up
 *   npm run demo -- --exit        run the scenario, then stop
 *   npm run demo -- --no-build    use the services as last built
 *   npm run demo -- --without order-service
 *                                 run the other services only, for `nx serve order-service`
 *
 * Data (PGlite databases, development signing keys, logs) lives under
 * .data/demo; delete it for a fresh start.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { parseArgs } from "node:util";
import { runScenario, tryItYourself } from "./scenario.js";
import { type ServiceName, serviceNames, startSystem } from "./system.js";

const { values: flags } = parseArgs({
  options: {
    exit: { type: "boolean", default: false },
    "no-build": { type: "boolean", default: false },
    without: { type: "string", multiple: true, default: [] },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (flags.help) {
  console.log(
    "usage: npm run demo [-- --exit] [-- --no-build]\n" +
      "  --exit      stop after the scenario instead of running until Ctrl-C\n" +
      "  --no-build  use the services as last built\n" +
      "  --without <service>  leave a service out (run it yourself with nx serve); no scenario",
  );
  process.exit(0);
}

const isService = (name: string): name is ServiceName =>
  (serviceNames as readonly string[]).includes(name);
const without: ServiceName[] = [];
for (const name of flags.without ?? []) {
  if (!isService(name)) {
    console.error(`--without ${name}: not a service (${serviceNames.join(", ")})`);
    process.exit(2);
  }
  without.push(name);
}
const services = serviceNames.filter((name) => !without.includes(name));

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

const listing = services.map((name) => `${name} :${ports[name]}`).join(", ");
console.log(`Starting ${listing} on PGlite…`);
console.log(
  `(service logs: ${path.relative(process.cwd(), path.join(dataDir, "logs"))}/<service>.log)`,
);
const started = performance.now();
const system = await startSystem({
  dataDir,
  logDir: path.join(dataDir, "logs"),
  ports,
  admin,
  services,
});
console.log(`SERVING after ${((performance.now() - started) / 1000).toFixed(1)} s.`);

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

if (without.length > 0) {
  // The scenario needs every service; the developer runs the missing ones.
  for (const name of without) {
    console.log(`\n${name} is yours to run on port ${ports[name]}; its neighbours are up:`);
    console.log(`  npx nx serve ${name}`);
  }
  console.log("\nCtrl-C stops the services the demo started.");
} else {
  await tellTheStory();
}

async function tellTheStory() {
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
}

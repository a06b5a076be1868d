/**
 * A container's health check, over the gRPC health protocol: exits 0 when
 * the service answers grpc.health.v1.Health/Check with SERVING, 1 otherwise,
 * saying why. Images carry Node, not grpc-health-probe, so this is it:
 *
 *   node /app/libs/platform/dist/cli/healthcheck.js          the service in this container (PORT)
 *   node /app/libs/platform/dist/cli/healthcheck.js <url>    any Meridian service
 */
import { ConnectError } from "@connectrpc/connect";
import { env, loadConfig } from "../config.js";
import { createHealthProbe } from "../health-probe.js";

function target(): string {
  if (process.argv[2] !== undefined) return process.argv[2];
  try {
    return `http://127.0.0.1:${loadConfig({ PORT: env.port() }).PORT}`;
  } catch (error) {
    console.error(`${(error as Error).message}\n(or pass the service's URL as an argument)`);
    process.exit(2);
  }
}

const url = target();
try {
  const status = await createHealthProbe(url)(2000);
  if (status !== "SERVING") {
    console.error(`${url}: ${status}`);
    process.exit(1);
  }
  process.exit(0);
} catch (error) {
  console.error(`${url}: ${error instanceof ConnectError ? error.message : String(error)}`);
  process.exit(1);
}

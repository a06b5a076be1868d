/**
 * Starts the whole Meridian system on one machine: the three services as
 * separate processes running their built code (`node dist/main.js`), each
 * with its own database, configured only through environment variables,
 * exactly as a container would run them. The demo and the end-to-end tests
 * both start the system through here.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, openSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createHealthProbe, ensureSigningKeyFile } from "@meridian/platform";

export const serviceNames = ["user-service", "payment-service", "order-service"] as const;
export type ServiceName = (typeof serviceNames)[number];

const appsDir = fileURLToPath(new URL("../../", import.meta.url));

export interface SystemOptions {
  /** Each service keeps its PGlite database (and the demo its keys) under here. */
  dataDir: string;
  /** Service output goes to <logDir>/<service>.log. */
  logDir: string;
  host?: string;
  ports: Record<ServiceName, number>;
  /** PostgreSQL URLs per service; a service without one runs on PGlite. */
  databaseUrls?: Partial<Record<ServiceName, string>>;
  /** The first admin user-service creates. */
  admin: { email: string; password: string };
  /** Which services to start (default: all three). */
  services?: readonly ServiceName[];
  /** Extra environment for one service (tests shorten timeouts, say). */
  env?: Partial<Record<ServiceName, Record<string, string>>>;
}

export interface RunningSystem {
  urls: Record<ServiceName, string>;
  /** SIGTERM to every service; resolves when all have exited. */
  stop(): Promise<void>;
  /** SIGTERM to one service; resolves with its exit code. */
  stopService(name: ServiceName): Promise<number | null>;
  /** Starts one stopped service again, with the same configuration. */
  startService(name: ServiceName): Promise<void>;
  logFile(name: ServiceName): string;
}

/**
 * The signing keys of the services that sign tokens, generated on first run
 * and kept (readable by the owner only) so that tokens survive restarts.
 * Production supplies them as configuration instead (AUTH_SIGNING_KEY or
 * AUTH_SIGNING_KEY_FILE).
 */
export async function ensureSigningKeys(dir: string): Promise<Record<"user" | "order", string>> {
  return {
    user: await ensureSigningKeyFile(path.join(dir, "user-service.jwk.json")),
    order: await ensureSigningKeyFile(path.join(dir, "order-service.jwk.json")),
  };
}

export async function startSystem(options: SystemOptions): Promise<RunningSystem> {
  const host = options.host ?? "127.0.0.1";
  const urls = Object.fromEntries(
    serviceNames.map((name) => [name, `http://${host}:${options.ports[name]}`]),
  ) as Record<ServiceName, string>;
  const keys = await ensureSigningKeys(path.join(options.dataDir, "keys"));
  await mkdir(options.logDir, { recursive: true });

  const environment = (name: ServiceName): Record<string, string> => {
    const database = options.databaseUrls?.[name];
    return {
      PATH: process.env.PATH ?? "",
      // For profiling under load (tools/cpu-profile.mjs); unset in normal runs.
      ...(process.env.SERVICE_NODE_OPTIONS
        ? {
            NODE_OPTIONS: process.env.SERVICE_NODE_OPTIONS,
            CPU_PROFILE_DIR: path.resolve(process.env.CPU_PROFILE_DIR ?? "."),
          }
        : {}),
      HOST: host,
      PORT: String(options.ports[name]),
      DATA_DIR: path.join(options.dataDir, name),
      ...(database ? { DATABASE_URL: database } : {}),
      ...(name === "user-service"
        ? {
            AUTH_SIGNING_KEY: keys.user,
            BOOTSTRAP_ADMIN_EMAIL: options.admin.email,
            BOOTSTRAP_ADMIN_PASSWORD: options.admin.password,
          }
        : {}),
      ...(name === "order-service"
        ? {
            AUTH_SIGNING_KEY: keys.order,
            USER_SERVICE_URL: urls["user-service"],
            PAYMENT_SERVICE_URL: urls["payment-service"],
          }
        : {}),
      ...(name === "payment-service"
        ? { USER_SERVICE_URL: urls["user-service"], ORDER_SERVICE_URL: urls["order-service"] }
        : {}),
      ...options.env?.[name],
    };
  };

  const processes = new Map<ServiceName, ChildProcess>();
  const logFile = (name: ServiceName) => path.join(options.logDir, `${name}.log`);

  const launch = async (name: ServiceName) => {
    const cwd = path.join(appsDir, name);
    const main = path.join(cwd, "dist", "main.js");
    if (!existsSync(main)) {
      throw new Error(`${main} is missing: build the services first (npx nx run-many -t build)`);
    }
    const log = openSync(logFile(name), "a");
    const child = spawn(process.execPath, [main], {
      cwd,
      env: environment(name),
      stdio: ["ignore", log, log],
      // Its own process group: Ctrl-C in a terminal signals the whole
      // foreground group, and a service signalled twice (by the terminal,
      // then by stop()) would give up on its graceful shutdown.
      detached: true,
    });
    processes.set(name, child);
    await waitUntilServing(name, urls[name], child, logFile(name));
  };

  const stopService = async (name: ServiceName) => {
    const child = processes.get(name);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
      return child?.exitCode ?? null;
    }
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = (await exited) as [number | null];
    return code;
  };

  const stop = async () => {
    await Promise.all(serviceNames.map((name) => stopService(name)));
  };

  // Whatever ends this process, the services end with it.
  process.once("exit", () => {
    for (const child of processes.values()) if (child.exitCode === null) child.kill("SIGTERM");
  });
  try {
    // Independent until called: start them side by side (PGlite's first
    // start creates a database, a few seconds each).
    await Promise.all((options.services ?? serviceNames).map(launch));
  } catch (error) {
    await stop();
    throw error;
  }
  return { urls, stop, stopService, startService: launch, logFile };
}

async function waitUntilServing(
  name: ServiceName,
  url: string,
  child: ChildProcess,
  log: string,
  timeoutMs = 120_000,
): Promise<void> {
  const probe = createHealthProbe(url);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const tail = (await readFile(log, "utf8")).split("\n").slice(-15).join("\n");
      throw new Error(
        `${name} exited (${child.exitCode ?? child.signalCode}) while starting:\n${tail}`,
      );
    }
    try {
      if ((await probe(1000)) === "SERVING") return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${name} did not become healthy within ${timeoutMs / 1000} s; see ${log}`);
}

/** A port that was free a moment ago (tests: every run gets its own). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The whole system on PostgreSQL, for the end-to-end and watch sections:
 * the three built services as processes, started exactly as the demo and
 * the end-to-end tests start them (apps/demo/src/system.ts), each on a fresh
 * database that is dropped afterwards.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import {
  createTestClient,
  type TestDatabase,
  testDatabaseKinds,
  testPostgresUrl,
} from "@meridian/testkit";
import pg from "pg";
import { freePort, type ServiceName, serviceNames, startSystem } from "../../demo/src/system.js";
import { children } from "./processes.js";

export interface BenchSystem {
  urls: Record<ServiceName, string>;
  pids: Record<ServiceName, number>;
  /** Where each service's log is (kept after the run, for when something failed). */
  logDir: string;
  /** The PostgreSQL server processes serving this system's databases. */
  postgresBackends(): Promise<number[]>;
  /** Signs up a new user and signs in: its id and access token. */
  signUp(): Promise<{ userId: string; token: string }>;
  /** Stops the services and drops their databases. */
  stop(): Promise<void>;
}

/** Starts the system; its service logs go to results/logs/<label>/, replacing the last run's. */
export async function startBenchSystem(label: string): Promise<BenchSystem> {
  const postgres = (await testDatabaseKinds()).find((kind) => kind.name === "postgres");
  if (postgres === undefined) {
    throw new Error(`needs PostgreSQL at ${testPostgresUrl} (set TEST_POSTGRES_URL)`);
  }
  const dataDir = await mkdtemp(path.join(tmpdir(), "meridian-bench-"));
  const logDir = path.join(import.meta.dirname, "..", "results", "logs", label);
  await rm(logDir, { recursive: true, force: true });
  const databases: TestDatabase[] = [];
  const dropAll = async () => {
    for (const database of databases) await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  };
  const ports = {} as Record<ServiceName, number>;
  const env = {} as Record<ServiceName, Record<string, string>>;
  let system: Awaited<ReturnType<typeof startSystem>>;
  try {
    for (const name of serviceNames) {
      ports[name] = await freePort();
      const database = await postgres.create();
      databases.push(database);
      env[name] = database.env;
    }
    system = await startSystem({
      dataDir,
      logDir,
      ports,
      admin: { email: "admin@bench.example", password: "bench admin password" },
      env,
    });
  } catch (error) {
    await dropAll();
    throw error;
  }

  const running = children();
  const pids = Object.fromEntries(
    serviceNames.map((name) => [
      name,
      running.find((child) => child.commandLine.includes(path.join(name, "dist", "main.js")))
        ?.pid ?? 0,
    ]),
  ) as Record<ServiceName, number>;

  const databaseNames = databases.map((database) =>
    new URL(database.env.DATABASE_URL ?? "postgresql:///").pathname.slice(1),
  );
  const admin = new pg.Client({ connectionString: testPostgresUrl });
  await admin.connect();
  const users = createTestClient(UserService, system.urls["user-service"]);
  return {
    urls: system.urls,
    pids,
    logDir,
    async postgresBackends() {
      const { rows } = await admin.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1)",
        [databaseNames],
      );
      return rows.map((row) => row.pid);
    },
    async signUp() {
      const email = `bench-${crypto.randomUUID()}@example.com`;
      const password = "a long enough password";
      const { user } = await users.createUser({ email, name: "Bench", password });
      const { accessToken } = await users.authenticate({ email, password });
      return { userId: user?.id ?? "", token: accessToken };
    },
    async stop() {
      await admin.end();
      await system.stop();
      await dropAll();
    },
  };
}

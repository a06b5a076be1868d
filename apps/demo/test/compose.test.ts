/**
 * docker-compose.yml, proven without a Docker engine: every container is
 * started as a local process with exactly the command, working directory and
 * environment that the Dockerfile and the compose file give it, in
 * depends_on order, each waited for with its own compose health check. The
 * mapping from containers to this machine is the only thing added:
 *
 * - host names become loopback: `postgres:5432` is the local PostgreSQL
 *   (TEST_POSTGRES_URL), and each service gets a free port in place of its
 *   container port, so the test runs beside `npm run demo` and other suites;
 * - `/app` (the image's root) is this repository, whose built dist/ folders
 *   are what the image copies; each named volume is a temporary directory.
 *
 * The PostgreSQL init script runs against the local server as the postgres
 * image would run it, so the databases and roles are the compose ones
 * (user_service, order_service, payment_service): this suite owns those
 * names on the local server and drops them before and after.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type ConfigVariable, describeConfig } from "@meridian/platform";
import { testDatabaseKinds, testPostgresUrl } from "@meridian/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../src/system.js";
import {
  type ComposeService,
  type ImageConfig,
  interpolate,
  readComposeFile,
  readDockerfile,
  startOrder,
} from "./compose-file.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../../", import.meta.url));
const compose = readComposeFile(path.join(root, "docker-compose.yml"));
const applications = ["user-service", "payment-service", "order-service"] as const;
const postgresReachable = (await testDatabaseKinds()).some((kind) => kind.name === "postgres");

function imageOf(name: string): ImageConfig {
  const build = compose.services[name]?.build;
  if (build === undefined) throw new Error(`${name} is not built from this repository`);
  return readDockerfile(path.join(root, build.context, "Dockerfile"), build.target, build.args);
}

describe("the Dockerfile and docker-compose.yml", () => {
  it("build each service as a non-root, production image that listens on every interface", () => {
    for (const name of applications) {
      const image = imageOf(name);
      expect(image.user).toBe("node");
      expect(image.env).toMatchObject({ NODE_ENV: "production", HOST: "0.0.0.0" });
      expect(image.workdir).toBe(`/app/apps/${name}`);
      expect(image.cmd).toEqual(["node", "dist/main.js"]);
    }
  });

  it("start a service only after what it needs is healthy, with a gRPC health check of its own", () => {
    for (const name of applications) {
      const service = compose.services[name] as ComposeService;
      expect(service.healthcheck?.test).toEqual([
        "CMD",
        "node",
        "/app/libs/platform/dist/cli/healthcheck.js",
      ]);
      expect(service.depends_on?.postgres).toEqual({ condition: "service_healthy" });
    }
    expect(startOrder(compose, [...applications, "demo"])).toEqual([
      "postgres",
      "keys",
      "user-service",
      "payment-service",
      "order-service",
      "demo",
    ]);
  });

  it("set, for each service, only variables its configuration reads, and everything it requires", async () => {
    for (const name of applications) {
      const image = imageOf(name);
      const { stdout } = await run(process.execPath, [image.cmd[1] as string, "--config-schema"], {
        cwd: toLocal(image.workdir),
      });
      const reads = JSON.parse(stdout) as ConfigVariable[];
      const set = { ...image.env, ...compose.services[name]?.environment };
      const known = new Set(reads.map((v) => v.name));
      expect(Object.keys(set).filter((v) => !known.has(v))).toEqual([]);
      const required = reads.filter((v) => v.required).map((v) => v.name);
      expect(required.filter((v) => !(v in set))).toEqual([]);
      // In production a signing service also needs its key: compose mounts it as a file.
      if (known.has("AUTH_SIGNING_KEY_FILE")) {
        expect(set.AUTH_SIGNING_KEY_FILE).toMatch(/^\/var\/lib\/meridian\/keys\//);
      }
    }
    expect(describeConfig({})).toEqual([]);
  });

  it("take passwords from the environment, defaulting only for a first local run", () => {
    const withSecrets = readComposeFile(path.join(root, "docker-compose.yml"), {
      ORDER_SERVICE_DB_PASSWORD: "s3cret",
    });
    expect(withSecrets.services.postgres?.environment?.ORDER_SERVICE_DB_PASSWORD).toBe("s3cret");
    expect(withSecrets.services["order-service"]?.environment?.DATABASE_URL).toBe(
      "postgresql://order_service:s3cret@postgres:5432/order_service",
    );
    // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's syntax, not a template
    expect(interpolate("a$$b ${X:-d} ${Y-e}", { Y: "" })).toBe("a$b d ");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's syntax, not a template
    expect(() => interpolate("${X:?say X}", {})).toThrow("X: say X");
  });
});

/** Container paths and host names, rewritten for this machine. */
const volumes = new Map<string, string>();
const ports = new Map<string, string>();
function toLocal(value: string): string {
  let local = value.replace(/^\/app(?=\/|$)/, root.replace(/\/$/, ""));
  for (const [target, dir] of volumes) {
    if (local.startsWith(target)) local = dir + local.slice(target.length);
  }
  return local.replace(/\b([a-z][a-z-]*):(\d+)\b/g, (match, host, port) => {
    return ports.get(`${host}:${port}`) ?? match;
  });
}

describe.skipIf(!postgresReachable)("docker compose up, as local processes", () => {
  const databaseNames = ["user_service", "order_service", "payment_service"];
  const pgUrl = new URL(testPostgresUrl);
  const postgresAt = `${pgUrl.hostname}:${pgUrl.port || "5432"}`;
  const processes = new Map<string, ChildProcess>();
  const logs = new Map<string, string[]>();
  let scratch: string;

  const admin = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: testPostgresUrl });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  const dropComposeDatabases = () =>
    admin(async (client) => {
      for (const name of databaseNames) {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await client.query(`DROP ROLE IF EXISTS ${name}`);
      }
    });

  /** The process a compose service's container runs: [file, args, cwd, env]. */
  const containerProcess = (name: string) => {
    const service = compose.services[name] as ComposeService;
    const image = imageOf(name);
    const [command = "", ...args] = service.command ?? image.cmd;
    const env: Record<string, string> = { PATH: process.env.PATH ?? "" };
    for (const [key, value] of Object.entries({ ...image.env, ...service.environment })) {
      env[key] = toLocal(value);
    }
    if (env.PORT !== undefined) {
      env.PORT = ports.get(`${name}:${env.PORT}`)?.split(":")[1] ?? env.PORT;
    }
    return {
      file: command === "node" ? process.execPath : command,
      args: args.map((a) => toLocal(a)),
      cwd: toLocal(image.workdir),
      env,
    };
  };

  const runToCompletion = async (name: string) => {
    const { file, args, cwd, env } = containerProcess(name);
    return run(file, args, { cwd, env });
  };

  const healthy = async (name: string) => {
    const test = compose.services[name]?.healthcheck?.test ?? [];
    expect(test[0]).toBe("CMD");
    const [, command = "", ...args] = test;
    const { env, cwd } = containerProcess(name);
    const until = Date.now() + 120_000;
    for (;;) {
      const child = processes.get(name);
      if (child?.exitCode !== null) {
        throw new Error(`${name} exited while starting:\n${logs.get(name)?.join("")}`);
      }
      try {
        await run(
          command === "node" ? process.execPath : command,
          args.map((a) => toLocal(a)),
          {
            cwd,
            env,
          },
        );
        return;
      } catch (error) {
        if (Date.now() > until) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  };

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), "meridian-compose-"));
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const [source = "", target = ""] = volume.split(":");
        if (!source.startsWith(".")) volumes.set(target, path.join(scratch, source));
      }
      if (name !== "postgres" && service.environment?.PORT !== undefined) {
        ports.set(`${name}:${service.environment.PORT}`, `127.0.0.1:${await freePort()}`);
      }
    }
    ports.set("postgres:5432", postgresAt);
    await dropComposeDatabases();

    // postgres: the image runs its init scripts once, on an empty data directory.
    const postgres = compose.services.postgres as ComposeService;
    for (const volume of postgres.volumes ?? []) {
      const [source = "", target = ""] = volume.split(":");
      if (!target.startsWith("/docker-entrypoint-initdb.d/")) continue;
      await run("bash", [path.join(root, source)], {
        env: {
          PATH: process.env.PATH ?? "",
          ...postgres.environment,
          // What the postgres image sets for its init scripts (its defaults), here over TCP.
          POSTGRES_USER: decodeURIComponent(pgUrl.username) || "postgres",
          POSTGRES_DB: pgUrl.pathname.slice(1) || "postgres",
          PGHOST: pgUrl.hostname,
          PGPORT: pgUrl.port || "5432",
        },
      });
    }

    await runToCompletion("keys");
    for (const name of startOrder(compose, applications).filter(
      (n) => !["postgres", "keys"].includes(n),
    )) {
      const { file, args, cwd, env } = containerProcess(name);
      const child = spawn(file, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
      const output: string[] = [];
      child.stdout?.on("data", (chunk) => output.push(String(chunk)));
      child.stderr?.on("data", (chunk) => output.push(String(chunk)));
      processes.set(name, child);
      logs.set(name, output);
      await healthy(name);
    }
  }, 240_000);

  afterAll(async () => {
    await Promise.all(
      [...processes.values()].map(async (child) => {
        if (child.exitCode !== null) return;
        const exited = once(child, "exit");
        child.kill("SIGTERM");
        await exited;
      }),
    );
    await dropComposeDatabases();
    await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  it("each service migrated its own database, owned by its own role, before it reported healthy", async () => {
    for (const [service, database] of [
      ["user-service", "user_service"],
      ["order-service", "order_service"],
      ["payment-service", "payment_service"],
    ] as const) {
      const url = new URL(testPostgresUrl);
      url.pathname = `/${database}`;
      const db = new pg.Client({ connectionString: url.toString() });
      await db.connect();
      const { rows } = await db
        .query(
          `SELECT migration_name, pg_get_userbyid(c.relowner) AS owner
             FROM "_prisma_migrations", pg_class c
            WHERE c.relname = '_prisma_migrations' AND finished_at IS NOT NULL
            ORDER BY migration_name`,
        )
        .finally(() => db.end());
      const migrations = (await readdir(path.join(root, "apps", service, "prisma", "migrations")))
        .filter((entry) => /^\d/.test(entry))
        .sort();
      expect(rows.map((r) => r.migration_name)).toEqual(migrations);
      expect(new Set(rows.map((r) => r.owner))).toEqual(new Set([database]));
    }
  });

  it("a service's role cannot connect to another service's database", async () => {
    const url = new URL(testPostgresUrl);
    url.username = "order_service";
    url.pathname = "/user_service";
    const client = new pg.Client({ connectionString: url.toString() });
    const error = await client.connect().catch((e: unknown) => e);
    await client.end().catch(() => {});
    expect(error).toMatchObject({ code: "42501" });
  });

  it("the keys service wrote each signing key once; running it again keeps them", async () => {
    const first = (await runToCompletion("keys")).stdout;
    const second = (await runToCompletion("keys")).stdout;
    expect(first).toMatch(/user-service\.jwk\.json: key \S+\n.*order-service\.jwk\.json: key \S+/);
    expect(second).toBe(first);
  });

  it("the demo service tells the whole scenario against the composed system", async () => {
    const { stdout } = await runToCompletion("demo");
    expect(stdout).toContain("Running the scenario against");
    expect(stdout).toContain("Scenario complete.");
  }, 120_000);

  it("a health check fails once its service has stopped", async () => {
    const child = processes.get("payment-service") as ChildProcess;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = await exited;
    expect(code).toBe(0);
    const [, command = "", ...args] = compose.services["payment-service"]?.healthcheck?.test ?? [];
    const { env, cwd } = containerProcess("payment-service");
    const failed = await run(
      command === "node" ? process.execPath : command,
      args.map((a) => toLocal(a)),
      { cwd, env },
    ).catch((e: { code: number; stderr: string }) => e);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toContain(env.PORT);
  });
});

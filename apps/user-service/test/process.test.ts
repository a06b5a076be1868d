/**
 * The service as an operator runs it: a process started from main.ts,
 * configured by environment variables, stopped by a signal.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { Health } from "@meridian/proto/grpc/health/v1/health_pb";
import { createTestClient, type TestDatabase, testDatabaseKinds } from "@meridian/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const appDir = fileURLToPath(new URL("..", import.meta.url));
const [pglite] = await testDatabaseKinds();

function startProcess(env: Record<string, string>): ChildProcess {
  return spawn(
    process.execPath,
    ["--conditions=@meridian/source", "--import", "tsx", "src/main.ts"],
    { cwd: appDir, env: { ...process.env, PORT: "0", ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
}

/** Resolves with the URL the service logs once it listens. */
async function listeningUrl(child: ChildProcess): Promise<string> {
  let output = "";
  for await (const chunk of child.stdout ?? []) {
    output += chunk;
    const match = /"url":"(http:\/\/[^"]+)".*listening/.exec(output);
    if (match?.[1]) return match[1];
  }
  throw new Error(`service exited before listening:\n${output}`);
}

describe("the user-service process", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await (pglite as NonNullable<typeof pglite>).create();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("serves until SIGTERM, then stops cleanly and exits 0", async () => {
    const child = startProcess(db.env);
    const url = await listeningUrl(child);
    const health = createTestClient(Health, url);
    expect((await health.check({})).status).toBe(1);
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = await exited;
    expect(code).toBe(0);
  });

  it("refuses to start on bad configuration, naming each bad variable", async () => {
    const child = startProcess({ ...db.env, PORT: "eighty", LOG_LEVEL: "loud" });
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr += chunk;
    });
    const [code] = await once(child, "exit");
    expect(code).toBe(2);
    expect(stderr).toContain('PORT must be a whole number, got "eighty"');
    expect(stderr).toContain(
      "LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent",
    );
  });
});

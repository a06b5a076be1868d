/**
 * tools/proto-breaking.sh, the CI check that refuses contract-breaking proto
 * changes. Every case copies Meridian's real proto/ and buf.yaml into a fresh
 * git repository, makes one change, and runs the script there: real git, real
 * buf, the rules buf.yaml names.
 */
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const workspace = fileURLToPath(new URL("../../../", import.meta.url));
const script = path.join(workspace, "tools", "proto-breaking.sh");

const common = "proto/meridian/common/v1/common.proto";
const user = "proto/meridian/user/v1/user.proto";
const order = "proto/meridian/order/v1/order.proto";
const payment = "proto/meridian/payment/v1/payment.proto";

const policy = "meridian.user.v2 in proto/meridian/user/v2/";
const shallowAdvice = "give actions/checkout 'fetch-depth: 0'";

// Git and the script see only what a test gives them: no CI variables of the
// machine running the tests, and no user or system git config (commit
// signing, hooks, a default branch) to change what git does.
const cleanEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !/^(GIT_|GITHUB_)/.test(key) && key !== "PROTO_BASE" && key !== "BUF",
    ),
  ),
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

interface Result {
  code: number;
  stdout: string;
  stderr: string;
  output: string;
}

function run(
  file: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, env: { ...cleanEnv, ...env } }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return reject(error);
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr, output: stdout + stderr });
    });
  });
}

/** The rules the script's report names, each once, sorted. */
function rulesIn(output: string): string[] {
  return [...new Set([...output.matchAll(/\[([A-Z_]+)\]/g)].map((m) => String(m[1])))].sort();
}

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "meridian-breaking-"));
  tempDirs.push(dir);
  return dir;
}

class Repo {
  constructor(readonly dir: string) {}

  async git(...args: string[]): Promise<string> {
    const result = await run("git", args, this.dir);
    if (result.code !== 0) throw new Error(`git ${args.join(" ")} failed: ${result.output}`);
    return result.stdout.trim();
  }

  /** Replaces `from`, which must occur exactly once, so a stale case fails loudly. */
  async edit(file: string, from: string, to: string): Promise<void> {
    const target = path.join(this.dir, file);
    const text = await readFile(target, "utf8");
    const found = text.split(from).length - 1;
    if (found !== 1) throw new Error(`${file} has ${found} copies of ${JSON.stringify(from)}`);
    await writeFile(
      target,
      text.replace(from, () => to),
    );
  }

  async commit(message: string): Promise<string> {
    await this.git("add", "--all");
    await this.git("commit", "--quiet", "--message", message);
    return this.git("rev-parse", "HEAD");
  }

  /** `<short sha> "<subject>"`, as the script names a base. */
  async named(ref: string): Promise<string> {
    return this.git("log", "-1", '--format=%h "%s"', ref);
  }

  /** Runs the script the way CI does: `bash tools/proto-breaking.sh` with this repository as the working directory. */
  check(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Result> {
    return run("bash", [script, ...args], this.dir, env);
  }
}

async function configure(repo: Repo): Promise<Repo> {
  await repo.git("config", "user.name", "Meridian Tests");
  await repo.git("config", "user.email", "tests@meridian.invalid");
  return repo;
}

async function initRepo(dir: string): Promise<Repo> {
  const repo = new Repo(dir);
  await repo.git("init", "--quiet", "--initial-branch=main");
  return configure(repo);
}

/** A repository on main whose one commit holds today's contracts. */
async function meridianRepo(): Promise<Repo> {
  const repo = await initRepo(await tempDir());
  await cp(path.join(workspace, "proto"), path.join(repo.dir, "proto"), { recursive: true });
  await cp(path.join(workspace, "buf.yaml"), path.join(repo.dir, "buf.yaml"));
  await repo.commit("Meridian's contracts");
  return repo;
}

async function cloneOf(origin: Repo, ...options: string[]): Promise<Repo> {
  const dir = await tempDir();
  const repo = new Repo(dir);
  // file:// so that --depth makes a shallow clone (a plain path ignores it).
  await repo.git("clone", "--quiet", ...options, `file://${origin.dir}`, ".");
  return configure(repo);
}

// Changes that break a caller built from the old contract, and the rules buf
// reports for each (all of them: a case that starts reporting more fails).
const dropDepartment = {
  file: user,
  from: "  // Optional; used to filter ListUsers.\n  string department = 4;\n",
  to: "",
};
const addSuspendUser = {
  file: user,
  from: "returns (stream WatchUsersResponse);\n}\n",
  to: `returns (stream WatchUsersResponse);
  // Stops a user from signing in, keeping their orders.
  rpc SuspendUser(SuspendUserRequest) returns (SuspendUserResponse);
}

message SuspendUserRequest {
  string id = 1;
}

message SuspendUserResponse {
  User user = 1;
}
`,
};
const addPhone = {
  file: user,
  from: "  google.protobuf.Timestamp update_time = 7;\n}",
  to: "  google.protobuf.Timestamp update_time = 7;\n  // Optional; for order updates.\n  string phone = 8;\n}",
};
const userEmail = "compared case-insensitively.\n  string email = 2;";

const breaking = [
  { name: "delete a field", ...dropDepartment, rules: ["FIELD_NO_DELETE"] },
  {
    name: "delete a field, reserving its number and name",
    ...dropDepartment,
    to: '  reserved 4;\n  reserved "department";\n',
    rules: ["FIELD_NO_DELETE"],
  },
  {
    name: "change a field's type (int64 to int32)",
    file: common,
    from: "int64 minor_units = 2;",
    to: "int32 minor_units = 2;",
    rules: ["FIELD_SAME_TYPE"],
  },
  {
    name: "change a field's number",
    file: user,
    from: userEmail,
    to: userEmail.replace("= 2;", "= 8;"),
    rules: ["FIELD_NO_DELETE"],
  },
  {
    name: "rename a field",
    file: user,
    from: "string name = 3;\n  // Optional",
    to: "string display_name = 3;\n  // Optional",
    rules: ["FIELD_SAME_JSON_NAME", "FIELD_SAME_NAME"],
  },
  {
    name: "give a field a json_name",
    file: user,
    from: userEmail,
    to: userEmail.replace("= 2;", '= 2 [json_name = "mail"];'),
    rules: ["FIELD_SAME_JSON_NAME"],
  },
  {
    name: "make a field optional (explicit presence)",
    file: user,
    from: userEmail,
    to: userEmail.replace("string", "optional string"),
    rules: ["FIELD_SAME_CARDINALITY"],
  },
  {
    name: "make a repeated field singular",
    file: order,
    from: "repeated LineItem line_items = 3;\n  // Sum",
    to: "LineItem line_items = 3;\n  // Sum",
    rules: ["FIELD_SAME_CARDINALITY"],
  },
  {
    name: "move a field into a oneof",
    file: common,
    from: "  string cursor = 2;\n}",
    to: "  oneof position {\n    string cursor = 2;\n  }\n}",
    rules: ["FIELD_SAME_CARDINALITY", "FIELD_SAME_ONEOF"],
  },
  {
    name: "rename an RPC",
    file: user,
    from: "rpc GetUser(GetUserRequest)",
    to: "rpc FetchUser(GetUserRequest)",
    rules: ["RPC_NO_DELETE"],
  },
  {
    name: "remove an RPC",
    file: user,
    from: "  rpc DeleteUser(DeleteUserRequest) returns (DeleteUserResponse);\n",
    to: "",
    rules: ["RPC_NO_DELETE"],
  },
  {
    name: "make a unary RPC server-streaming",
    file: user,
    from: "returns (GetUserResponse)",
    to: "returns (stream GetUserResponse)",
    rules: ["RPC_SAME_SERVER_STREAMING"],
  },
  {
    name: "make a server-streaming RPC unary",
    file: user,
    from: "returns (stream WatchUsersResponse)",
    to: "returns (WatchUsersResponse)",
    rules: ["RPC_SAME_SERVER_STREAMING"],
  },
  {
    name: "make a client-streaming RPC unary",
    file: user,
    from: "rpc ImportUsers(stream ImportUsersRequest)",
    to: "rpc ImportUsers(ImportUsersRequest)",
    rules: ["RPC_SAME_CLIENT_STREAMING"],
  },
  {
    name: "make a bidi-streaming RPC server-streaming",
    file: order,
    from: "rpc QuoteCart(stream QuoteCartRequest)",
    to: "rpc QuoteCart(QuoteCartRequest)",
    rules: ["RPC_SAME_CLIENT_STREAMING"],
  },
  {
    name: "change an RPC's request type",
    file: payment,
    from: "rpc Refund(RefundRequest)",
    to: "rpc Refund(ChargeRequest)",
    rules: ["RPC_SAME_REQUEST_TYPE"],
  },
  {
    name: "change an RPC's response type",
    file: payment,
    from: "returns (RefundResponse)",
    to: "returns (ChargeResponse)",
    rules: ["RPC_SAME_RESPONSE_TYPE"],
  },
  {
    name: "drop an RPC's idempotency level (Connect's GET calls stop working)",
    file: order,
    from: "rpc GetOrder(GetOrderRequest) returns (GetOrderResponse) {\n    option idempotency_level = NO_SIDE_EFFECTS;\n  }",
    to: "rpc GetOrder(GetOrderRequest) returns (GetOrderResponse);",
    rules: ["RPC_SAME_IDEMPOTENCY_LEVEL"],
  },
  {
    name: "rename a service",
    file: user,
    from: "service UserService {",
    to: "service Users {",
    rules: ["SERVICE_NO_DELETE"],
  },
  {
    name: "rename a package",
    file: payment,
    from: "package meridian.payment.v1;",
    to: "package meridian.payments.v1;",
    rules: ["FILE_SAME_PACKAGE"],
  },
  {
    name: "delete an enum value",
    file: order,
    from: "  ORDER_STATUS_CANCELLED = 5;\n",
    to: "",
    rules: ["ENUM_VALUE_NO_DELETE"],
  },
  {
    name: "rename an enum value",
    file: user,
    from: "USER_ROLE_ADMIN = 2;",
    to: "USER_ROLE_ADMINISTRATOR = 2;",
    rules: ["ENUM_VALUE_SAME_NAME"],
  },
  {
    name: "renumber an enum value",
    file: user,
    from: "USER_ROLE_ADMIN = 2;",
    to: "USER_ROLE_ADMIN = 3;",
    rules: ["ENUM_VALUE_NO_DELETE"],
  },
  {
    name: "delete a message and the field that used it",
    file: order,
    from: "  // Changes that could not be applied (an unknown SKU, say); the cart is\n  // priced without them and the stream goes on.\n  repeated CartProblem problems = 4;\n}\n\nmessage CartProblem {\n  string sku = 1;\n  string message = 2;\n}\n",
    to: "}\n",
    rules: ["FIELD_NO_DELETE", "MESSAGE_NO_DELETE"],
  },
];

const compatible = [
  { name: "add a field", ...addPhone },
  { name: "add an RPC and its messages", ...addSuspendUser },
  {
    name: "add an enum value",
    file: user,
    from: "  USER_ROLE_ADMIN = 2;\n",
    to: "  USER_ROLE_ADMIN = 2;\n  // May read everything, change nothing.\n  USER_ROLE_AUDITOR = 3;\n",
  },
  {
    name: "add a message",
    file: common,
    from: "  string cursor = 2;\n}\n",
    to: "  string cursor = 2;\n}\n\n// A postal address.\nmessage Address {\n  repeated string lines = 1;\n  string postal_code = 2;\n  string country_code = 3;\n}\n",
  },
  {
    name: "deprecate an RPC",
    file: order,
    from: "rpc CancelOrder(CancelOrderRequest) returns (CancelOrderResponse);",
    to: "rpc CancelOrder(CancelOrderRequest) returns (CancelOrderResponse) {\n    option deprecated = true;\n  }",
  },
  {
    name: "reword a comment",
    file: order,
    from: "// Cancels an order and refunds it if it was paid.",
    to: "// Cancels an order, refunding it when it was paid.",
  },
];

describe.concurrent("tools/proto-breaking.sh", () => {
  it.each(breaking)("rejects a commit that would $name", async ({ file, from, to, rules }) => {
    const repo = await meridianRepo();
    const base = await repo.named("HEAD");
    await repo.edit(file, from, to);
    await repo.commit("A breaking change");

    const result = await repo.check();

    expect(result.code, result.output).toBe(1);
    expect(rulesIn(result.stdout)).toEqual(rules);
    expect(result.stdout).toContain(`against ${base} (HEAD~1, the commit before the last)`);
    // Each finding names the file and line it is about, the rule and buf's words.
    for (const rule of rules) {
      expect(result.stdout).toMatch(new RegExp(`^  ${file}:\\d+:\\d+ \\[${rule}\\] \\S`, "m"));
    }
    expect(result.stdout).toContain(policy);
    expect(result.stdout).not.toContain("::error");
  });

  it("rejects deleting a file", async () => {
    const repo = await meridianRepo();
    await rm(path.join(repo.dir, payment));
    await repo.commit("Drop payments");

    const result = await repo.check();

    expect(result.code, result.output).toBe(1);
    expect(result.stdout).toContain(
      '  [FILE_NO_DELETE] Previously present file "meridian/payment/v1/payment.proto" was deleted.',
    );
  });

  it.each(compatible)("accepts a commit that would $name", async ({ file, from, to }) => {
    const repo = await meridianRepo();
    const base = await repo.named("HEAD");
    await repo.edit(file, from, to);
    await repo.commit("A compatible change");

    const result = await repo.check();

    expect(result.output).toBe(
      `proto-breaking: no breaking changes against ${base} (HEAD~1, the commit before the last).\n`,
    );
    expect(result.code).toBe(0);
  });

  it("accepts a breaking change made the documented way, as a v2 package beside v1", async () => {
    const repo = await meridianRepo();
    const v1 = await readFile(path.join(repo.dir, user), "utf8");
    const v2 = v1
      .replace("package meridian.user.v1;", "package meridian.user.v2;")
      .replace(dropDepartment.from, "")
      .replace(
        "rpc GetUser(GetUserRequest) returns (GetUserResponse)",
        "rpc GetUser(GetUserRequest) returns (stream GetUserResponse)",
      );
    expect(v2).not.toContain("department = 4");
    expect(v2).toContain("package meridian.user.v2;");
    expect(v2).toContain("returns (stream GetUserResponse)");
    await mkdir(path.join(repo.dir, "proto/meridian/user/v2"));
    await writeFile(path.join(repo.dir, "proto/meridian/user/v2/user.proto"), v2);
    await repo.edit(
      user,
      "service UserService {\n",
      "service UserService {\n  option deprecated = true;\n",
    );
    await repo.commit("meridian.user.v2: users without departments");

    const result = await repo.check();

    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toMatch(/^proto-breaking: no breaking changes against /);
  });

  it("reports contracts that do not compile as a failure to check, not as breaking", async () => {
    const repo = await meridianRepo();
    await repo.edit(common, "message Money {", "message Money {\n  Nonsense nonsense = 3;");

    const result = await repo.check();

    expect(result.code, result.output).toBe(2);
    expect(rulesIn(result.stdout)).toEqual(["COMPILE"]);
    expect(result.stdout).toContain("buf could not compile the contracts");
    expect(result.stdout).not.toContain(policy);
  });

  describe("chooses as the base", () => {
    it("on a branch, the merge base with main, whatever main gained since", async () => {
      const repo = await meridianRepo();
      const mergeBase = await repo.named("HEAD");
      await repo.git("switch", "--quiet", "--create", "breaking");
      await repo.edit(dropDepartment.file, dropDepartment.from, dropDepartment.to);
      await repo.commit("Users without departments");
      await repo.git("switch", "--quiet", "main");
      // Compared with main's tip, either branch would look as if it deleted this RPC.
      await repo.edit(addSuspendUser.file, addSuspendUser.from, addSuspendUser.to);
      await repo.commit("SuspendUser");
      await repo.git("switch", "--quiet", "--create", "compatible", "HEAD~1");
      await repo.edit(addPhone.file, addPhone.from, addPhone.to);
      await repo.commit("Users have phone numbers");

      const onCompatible = await repo.check();
      expect(onCompatible.output).toBe(
        `proto-breaking: no breaking changes against ${mergeBase} (merge base with main).\n`,
      );
      expect(onCompatible.code).toBe(0);

      await repo.git("switch", "--quiet", "breaking");
      const onBreaking = await repo.check();
      expect(onBreaking.code, onBreaking.output).toBe(1);
      expect(onBreaking.stdout).toContain(`against ${mergeBase} (merge base with main)`);
      expect(rulesIn(onBreaking.stdout)).toEqual(["FIELD_NO_DELETE"]);
    });

    it("on a branch with no local main, the merge base with origin/main", async () => {
      const origin = await meridianRepo();
      const mergeBase = await origin.named("HEAD");
      await origin.git("switch", "--quiet", "--create", "feature");
      await origin.edit(dropDepartment.file, dropDepartment.from, dropDepartment.to);
      await origin.commit("Users without departments");
      await origin.git("switch", "--quiet", "main");
      await origin.edit(addSuspendUser.file, addSuspendUser.from, addSuspendUser.to);
      await origin.commit("SuspendUser");
      const clone = await cloneOf(origin, "--branch", "feature");
      await expect(clone.git("branch", "--list", "main")).resolves.toBe("");

      const result = await clone.check();

      expect(result.code, result.output).toBe(1);
      expect(result.stdout).toContain(`against ${mergeBase} (merge base with origin/main)`);
      expect(rulesIn(result.stdout)).toEqual(["FIELD_NO_DELETE"]);
    });

    it("in a GitHub pull request, the merge base with origin/$GITHUB_BASE_REF, with annotations", async () => {
      const origin = await meridianRepo();
      const forkPoint = await origin.named("HEAD");
      await origin.git("switch", "--quiet", "--create", "feature");
      await origin.edit(dropDepartment.file, dropDepartment.from, dropDepartment.to);
      await origin.commit("Users without departments");
      // The breaking commit is not the PR's last: HEAD~1 would miss it.
      await origin.edit(addPhone.file, addPhone.from, addPhone.to);
      await origin.commit("Users have phone numbers");
      await origin.git("switch", "--quiet", "main");
      await origin.edit(addSuspendUser.file, addSuspendUser.from, addSuspendUser.to);
      const mainTip = await origin.commit("SuspendUser");
      const clone = await cloneOf(origin);
      const github = { GITHUB_ACTIONS: "true", GITHUB_BASE_REF: "main" };

      // What actions/checkout gives a pull_request run by default: the PR
      // merged into its target, on a detached HEAD.
      await clone.git("checkout", "--quiet", "--detach", "origin/main");
      await clone.git("merge", "--quiet", "--no-ff", "--message", "Merge", "origin/feature");
      const userLine = (await readFile(path.join(clone.dir, user), "utf8"))
        .split("\n")
        .indexOf("message User {");
      const merged = await clone.check([], github);
      expect(merged.code, merged.output).toBe(1);
      expect(merged.stdout).toContain(
        `against ${await clone.named(mainTip)} (merge base with origin/main)`,
      );
      expect(rulesIn(merged.stdout)).toEqual(["FIELD_NO_DELETE"]);
      expect(merged.stdout).toContain(
        `::error file=${user},line=${userLine + 1},col=1,title=FIELD_NO_DELETE::Previously present field "4" with name "department" on message "User" was deleted.\n`,
      );

      // And with the PR's head checked out instead (ref: github.head_ref).
      await clone.git("checkout", "--quiet", "--detach", "origin/feature");
      const head = await clone.check([], github);
      expect(head.code, head.output).toBe(1);
      expect(head.stdout).toContain(`against ${forkPoint} (merge base with origin/main)`);
      expect(rulesIn(head.stdout)).toEqual(["FIELD_NO_DELETE"]);
    });

    it("on main with a clean tree, HEAD~1, so only the last commit is checked", async () => {
      const repo = await meridianRepo();
      const first = await repo.named("HEAD");
      await repo.edit(dropDepartment.file, dropDepartment.from, dropDepartment.to);
      const breakingCommit = await repo.commit("Users without departments");

      const afterBreaking = await repo.check();
      expect(afterBreaking.code, afterBreaking.output).toBe(1);
      expect(afterBreaking.stdout).toContain(
        `against ${first} (HEAD~1, the commit before the last)`,
      );

      await repo.edit(addPhone.file, addPhone.from, addPhone.to);
      await repo.commit("Users have phone numbers");
      const afterCompatible = await repo.check();
      const expected = `proto-breaking: no breaking changes against ${await repo.named(breakingCommit)} (HEAD~1, the commit before the last).\n`;
      expect(afterCompatible.output).toBe(expected);
      expect(afterCompatible.code).toBe(0);

      // CI checking out a commit of main leaves HEAD detached: still main.
      await repo.git("checkout", "--quiet", "--detach", "HEAD");
      const detached = await repo.check();
      expect(detached.output).toBe(expected);
      expect(detached.code).toBe(0);
    });

    it("on main with uncommitted changes to proto/, HEAD", async () => {
      const repo = await meridianRepo();
      await repo.edit(dropDepartment.file, dropDepartment.from, dropDepartment.to);
      const head = await repo.named(await repo.commit("Users without departments"));
      // Against HEAD~1 this tree would still show the committed deletion.
      await repo.edit(addPhone.file, addPhone.from, addPhone.to);

      const compatibleEdit = await repo.check();
      expect(compatibleEdit.output).toBe(
        `proto-breaking: no breaking changes against ${head} (HEAD, as proto/ has uncommitted changes).\n`,
      );
      expect(compatibleEdit.code).toBe(0);

      await repo.edit(order, "  ORDER_STATUS_CANCELLED = 5;\n", "");
      const breakingEdit = await repo.check();
      expect(breakingEdit.code, breakingEdit.output).toBe(1);
      expect(breakingEdit.stdout).toContain(
        `against ${head} (HEAD, as proto/ has uncommitted changes)`,
      );
      expect(rulesIn(breakingEdit.stdout)).toEqual(["ENUM_VALUE_NO_DELETE"]);
    });

    it("--against, over PROTO_BASE, GITHUB_BASE_REF and the branch", async () => {
      const repo = await meridianRepo();
      const first = await repo.git("rev-parse", "HEAD");
      await repo.edit(dropDepartment.file, dropDepartment.from, dropDepartment.to);
      await repo.commit("Users without departments");
      await repo.edit(addPhone.file, addPhone.from, addPhone.to);
      const head = await repo.commit("Users have phone numbers");
      expect((await repo.check()).code).toBe(0);

      const fromEnv = await repo.check([], { PROTO_BASE: first });
      expect(fromEnv.code, fromEnv.output).toBe(1);
      expect(fromEnv.stdout).toContain(`against ${await repo.named(first)} (PROTO_BASE=${first})`);

      // origin/main does not exist: following GITHUB_BASE_REF would fail.
      const fromFlag = await repo.check(["--against", first], {
        PROTO_BASE: head,
        GITHUB_BASE_REF: "main",
      });
      expect(fromFlag.code, fromFlag.output).toBe(1);
      expect(fromFlag.stdout).toContain(`against ${await repo.named(first)} (--against ${first})`);
      expect(rulesIn(fromFlag.stdout)).toEqual(["FIELD_NO_DELETE"]);
    });
  });

  describe("edge cases", () => {
    it("a shallow clone without the base fails and says to fetch full history", async () => {
      const origin = await meridianRepo();
      const first = await origin.git("rev-parse", "HEAD");
      await origin.git("branch", "feature");
      await origin.edit(dropDepartment.file, dropDepartment.from, dropDepartment.to);
      await origin.commit("Users without departments");

      const main = await cloneOf(origin, "--depth", "1");
      const onMain = await main.check();
      expect(onMain.code, onMain.output).toBe(2);
      expect(onMain.stderr).toContain("HEAD~1 is not in this clone, which is shallow");
      expect(onMain.stderr).toContain(shallowAdvice);

      const withAgainst = await main.check(["--against", first]);
      expect(withAgainst.code, withAgainst.output).toBe(2);
      expect(withAgainst.stderr).toContain(`${first} is not in this clone, which is shallow`);

      // actions/checkout in a pull request, by default: one commit, no target branch.
      const pullRequest = await cloneOf(origin, "--depth", "1", "--branch", "feature");
      const inPullRequest = await pullRequest.check([], { GITHUB_BASE_REF: "main" });
      expect(inPullRequest.code, inPullRequest.output).toBe(2);
      expect(inPullRequest.stderr).toContain("origin/main is not in this clone, which is shallow");
      expect(inPullRequest.stderr).toContain(shallowAdvice);
    });

    it("a shallow clone that holds the base is checked as usual", async () => {
      const origin = await meridianRepo();
      const first = await origin.named("HEAD");
      await origin.edit(dropDepartment.file, dropDepartment.from, dropDepartment.to);
      await origin.commit("Users without departments");
      const clone = await cloneOf(origin, "--depth", "2");

      const result = await clone.check();

      expect(result.code, result.output).toBe(1);
      expect(result.stdout).toContain(`against ${first} (HEAD~1, the commit before the last)`);
      expect(rulesIn(result.stdout)).toEqual(["FIELD_NO_DELETE"]);
    });

    it("a base without proto/ passes: there was nothing to break", async () => {
      const repo = await initRepo(await tempDir());
      await writeFile(path.join(repo.dir, "README.md"), "# Meridian\n");
      const start = await repo.named(await repo.commit("Start"));
      await cp(path.join(workspace, "proto"), path.join(repo.dir, "proto"), { recursive: true });
      await cp(path.join(workspace, "buf.yaml"), path.join(repo.dir, "buf.yaml"));
      await repo.commit("Meridian's contracts");

      const result = await repo.check();

      expect(result.output).toBe(
        `proto-breaking: no proto/ at ${start} (HEAD~1, the commit before the last): nothing to break.\n`,
      );
      expect(result.code).toBe(0);
    });

    it("the first commit passes: there is nothing before it", async () => {
      const repo = await meridianRepo();

      const result = await repo.check();

      expect(result.output).toBe(
        "proto-breaking: HEAD is the first commit: nothing to compare proto/ against.\n",
      );
      expect(result.code).toBe(0);
    });

    it("an unknown --against names the ref", async () => {
      const repo = await meridianRepo();

      const result = await repo.check(["--against", "no-such-branch"]);

      expect(result.stderr).toBe(
        "proto-breaking: no-such-branch is not a commit in this repository.\n",
      );
      expect(result.code).toBe(2);
    });
  });
});

/**
 * One unary bench server in a process of its own (the bench pins it to a
 * core): `server-process.ts <mode>`. Prints `{"port":<n>}` once serving and
 * runs until signalled.
 */
import { type UnaryModeName, unaryModes } from "./modes.js";

const name = process.argv[2] as UnaryModeName;
const mode = unaryModes[name];
if (mode === undefined) {
  console.error(`unknown mode "${name}"; one of ${Object.keys(unaryModes).join(", ")}`);
  process.exit(2);
}
const port = await mode.serve("127.0.0.1");
console.log(JSON.stringify({ port }));
process.once("SIGTERM", () => process.exit(0));

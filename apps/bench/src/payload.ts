/**
 * Section 4: what a message costs on the wire and in the CPU, as protobuf
 * binary (what Meridian's services send each other) and as JSON (what the
 * Connect JSON protocol, or a REST API, would send). Pure computation, in a
 * process of its own: every other section runs protobuf-es on other message
 * types in the bench's process, and what the JIT has seen changes the
 * numbers (by 2× for toBinary), so they would depend on which sections ran.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  type DescMessage,
  fromBinary,
  fromJson,
  type MessageShape,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { encodeBinary } from "@meridian/platform";
import { ListOrdersResponseSchema, OrderSchema } from "@meridian/proto/meridian/order/v1/order_pb";
import { UserSchema } from "@meridian/proto/meridian/user/v1/user_pb";
import { outputOf } from "./processes.js";
import { formatNumber, printTable } from "./report.js";
import { sampleOrder, sampleOrderPage, sampleUser } from "./samples.js";

export interface PayloadRow {
  message: string;
  protobufBytes: number;
  jsonBytes: number;
  /** Nanoseconds per message. */
  ns: Record<Operation, number>;
}

const operations = [
  "pb encode",
  "pb encode, planned",
  "pb decode",
  "JSON encode",
  "JSON decode",
  "plain encode",
  "plain decode",
] as const;
type Operation = (typeof operations)[number];

export async function benchPayload({ quick }: { quick: boolean }) {
  const sampleMs = quick ? 20 : 200;
  const child = spawn(
    process.execPath,
    [
      "--conditions=@meridian/source",
      "--import",
      "tsx",
      fileURLToPath(import.meta.url),
      `${sampleMs}`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const rows = JSON.parse(await outputOf(child)) as PayloadRow[];
  printTable(
    "4. Payload: size and cost per message (µs), protobuf binary (pb) vs JSON",
    ["message", "pb size", "JSON size", "JSON/pb", ...operations],
    rows.map((row) => [
      row.message,
      `${formatNumber(row.protobufBytes)} B`,
      `${formatNumber(row.jsonBytes)} B`,
      `${(row.jsonBytes / row.protobufBytes).toFixed(2)}×`,
      ...operations.map((op) => formatNumber(row.ns[op] / 1000, row.ns[op] < 10_000 ? 2 : 1)),
    ]),
    [
      "pb: toBinary / fromBinary; planned: Meridian's encodeBinary (the same bytes). JSON: protobuf-es toJson + JSON.stringify / JSON.parse + fromJson (the",
      "Connect JSON protocol's work). plain: JSON.stringify / JSON.parse of the same data as a plain object",
      `(what a REST service without protobuf does). Median of 5 samples of ${sampleMs} ms each, after a warm-up.`,
    ],
  );
  return rows;
}

/** A message, its sizes, and each operation on it as a function to time. */
function codecs<Desc extends DescMessage>(name: string, schema: Desc, message: MessageShape<Desc>) {
  const binary = toBinary(schema, message);
  const json = JSON.stringify(toJson(schema, message));
  const plain = JSON.parse(json) as unknown;
  const work: Record<Operation, () => unknown> = {
    "pb encode": () => toBinary(schema, message),
    // What Meridian's direct path sends with (libs/platform/src/binary-encoding.ts).
    "pb encode, planned": () => encodeBinary(schema, message),
    "pb decode": () => fromBinary(schema, binary),
    "JSON encode": () => JSON.stringify(toJson(schema, message)),
    "JSON decode": () => fromJson(schema, JSON.parse(json)),
    "plain encode": () => JSON.stringify(plain),
    "plain decode": () => JSON.parse(json),
  };
  return { name, protobufBytes: binary.length, jsonBytes: Buffer.byteLength(json), work };
}

/** Results land here so that the optimizer cannot drop the work. */
const sink: unknown[] = [undefined];

/** Runs `work` for `sampleMs`: nanoseconds per call. */
function nanosecondsPerCall(work: () => unknown, sampleMs: number): number {
  let calls = 0;
  let elapsed = 0;
  const started = performance.now();
  // Check the clock every 16 calls: reading it costs more than a small call.
  while (elapsed < sampleMs) {
    for (let i = 0; i < 16; i++) sink[0] = work();
    calls += 16;
    elapsed = performance.now() - started;
  }
  return (elapsed * 1e6) / calls;
}

// The child: measures and prints the rows as JSON.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const sampleMs = Number(process.argv[2]);
  const messages = [
    codecs("User", UserSchema, sampleUser),
    codecs("Order, 3 items", OrderSchema, sampleOrder),
    codecs("ListOrders page of 50", ListOrdersResponseSchema, sampleOrderPage),
  ];
  // Every operation on every message before any is timed, so that each row
  // meets a JIT that has seen all three, as a service's sees many types.
  for (const { work } of messages)
    for (const op of operations) nanosecondsPerCall(work[op], sampleMs);
  const rows: PayloadRow[] = messages.map(({ work, ...sizes }) => {
    const ns = {} as Record<Operation, number>;
    for (const op of operations) {
      const samples = Array.from({ length: 5 }, () => nanosecondsPerCall(work[op], sampleMs));
      ns[op] = samples.sort((a, b) => a - b)[2] ?? Number.NaN;
    }
    return {
      message: sizes.name,
      protobufBytes: sizes.protobufBytes,
      jsonBytes: sizes.jsonBytes,
      ns,
    };
  });
  console.log(JSON.stringify(rows));
}

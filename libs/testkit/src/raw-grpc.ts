/**
 * gRPC calls as bytes on the wire: a raw HTTP/2 client that sends exactly
 * the headers and body it is given (malformed ones included) and captures
 * everything that comes back, and a corpus of such calls for any unary
 * method. The differential tests send each call to a server's direct gRPC
 * path and to Connect's stock adapter and require the same answer.
 */
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, type DescService, type MessageInitShape, toBinary } from "@bufbuild/protobuf";

export interface RawCall {
  /** What the case exercises, for test names. */
  name: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface RawAnswer {
  /** The HTTP status, or 0 when the stream was reset before any headers. */
  status: number;
  /** Response headers, pseudo-headers and `date` left out. */
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Buffer;
  /** The HTTP/2 reset code when the server reset the stream (0 when it ended normally). */
  rstCode: number;
}

/** One HTTP/2 connection to `url`, sending raw calls over it. */
export function rawGrpcClient(url: string) {
  const session = http2.connect(url);
  session.on("error", () => {});
  return {
    call(call: RawCall): Promise<RawAnswer> {
      return new Promise((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": call.path,
          te: "trailers",
          ...call.headers,
        });
        const answer: RawAnswer = {
          status: 0,
          headers: {},
          trailers: {},
          body: Buffer.alloc(0),
          rstCode: 0,
        };
        const chunks: Buffer[] = [];
        stream.on("response", (headers) => {
          answer.status = Number(headers[":status"]);
          answer.headers = plain(headers);
        });
        stream.on("trailers", (trailers) => {
          answer.trailers = plain(trailers);
        });
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("error", () => {});
        stream.on("close", () => {
          answer.body = Buffer.concat(chunks);
          answer.rstCode = stream.rstCode ?? 0;
          resolve(answer);
        });
        stream.setTimeout(20_000, () => reject(new Error(`${call.name}: no answer in 20 s`)));
        stream.end(call.body);
      });
    },
    close: () => new Promise<void>((resolve) => session.close(() => resolve())),
  };
}

function plain(headers: http2.IncomingHttpHeaders): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":") || name === "date" || value === undefined) continue;
    result[name] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return result;
}

/** A gRPC length-prefixed message: flags, a 4-byte big-endian length, the bytes. */
export function grpcFrame(bytes: Uint8Array, flags = 0, declaredLength = bytes.byteLength): Buffer {
  const frame = Buffer.alloc(5 + bytes.byteLength);
  frame[0] = flags;
  frame.writeUInt32BE(declaredLength, 1);
  frame.set(bytes, 5);
  return frame;
}

export interface CorpusOptions {
  /** A token the server accepts. */
  token: string;
  /** The server's READ_MAX_BYTES, to go one byte over. */
  readMaxBytes: number;
  /** Requests to send for a method, by method name (the empty request is always sent). */
  samples?: Partial<Record<string, readonly object[]>>;
  /** Which methods get calls: unary by default; server-streaming ones take one request too. */
  kinds?: readonly ("unary" | "server_streaming")[];
}

/**
 * Every way Meridian's calls can arrive, for each unary (and optionally each
 * server-streaming) method of `service`:
 * valid requests, and each thing a client can get wrong or do unusually.
 */
export function callCorpus(service: DescService, options: CorpusOptions): RawCall[] {
  const calls: RawCall[] = [];
  const auth = { authorization: `Bearer ${options.token}` };
  const grpc = { "content-type": "application/grpc", ...auth };
  const kinds: readonly string[] = options.kinds ?? ["unary"];
  for (const method of service.methods) {
    if (!kinds.includes(method.methodKind)) continue;
    const path = `/${service.typeName}/${method.name}`;
    const add = (name: string, headers: Record<string, string>, body: Uint8Array) =>
      calls.push({ name: `${method.name}: ${name}`, path, headers, body });
    const encode = (init: object) =>
      toBinary(method.input, create(method.input, init as MessageInitShape<typeof method.input>));
    const requests = [{}, ...(options.samples?.[method.name] ?? [])];
    requests.forEach((init, i) => {
      const bytes = encode(init);
      const label = i === 0 ? "empty request" : `request ${i}`;
      add(label, grpc, grpcFrame(bytes));
      add(
        `${label}, +proto content type`,
        { ...grpc, "content-type": "application/grpc+proto" },
        grpcFrame(bytes),
      );
      add(
        `${label}, gzip-compressed`,
        { ...grpc, "grpc-encoding": "gzip" },
        grpcFrame(gzipSync(bytes), 1),
      );
      add(
        `${label}, response compression accepted`,
        { ...grpc, "grpc-accept-encoding": "gzip" },
        grpcFrame(bytes),
      );
      add(`${label}, deadline 50 s`, { ...grpc, "grpc-timeout": "50S" }, grpcFrame(bytes));
    });
    const empty = grpcFrame(encode({}));
    add("no token", { "content-type": "application/grpc" }, empty);
    add("malformed token", { ...grpc, authorization: "Bearer not-a-jwt" }, empty);
    add("not a bearer token", { ...grpc, authorization: "Basic dXNlcjpwYXNz" }, empty);
    add("expired deadline", { ...grpc, "grpc-timeout": "1n" }, empty);
    add("invalid grpc-timeout", { ...grpc, "grpc-timeout": "soon" }, empty);
    add("oversized message", grpc, grpcFrame(new Uint8Array(0), 0, options.readMaxBytes + 1));
    add("truncated message", grpc, grpcFrame(new Uint8Array(8), 0, 20));
    add("two messages", grpc, Buffer.concat([empty, empty]));
    add("a message and a partial one", grpc, Buffer.concat([empty, empty.subarray(0, 3)]));
    add("no message", grpc, new Uint8Array(0));
    add("compressed flag without grpc-encoding", grpc, grpcFrame(new Uint8Array([1, 2, 3]), 1));
    add(
      "corrupt gzip",
      { ...grpc, "grpc-encoding": "gzip" },
      grpcFrame(new Uint8Array([1, 2, 3]), 1),
    );
    add("unknown grpc-encoding", { ...grpc, "grpc-encoding": "zstd" }, empty);
    add("not protobuf", grpc, grpcFrame(new Uint8Array([0xff, 0xff, 0xff, 0xff])));
    add("wrong field type", grpc, grpcFrame(new Uint8Array([0x0a, 0x05, 0x01])));
    add(
      "JSON codec",
      { ...grpc, "content-type": "application/grpc+json" },
      grpcFrame(Buffer.from("{}")),
    );
  }
  return calls;
}

/**
 * The direct path for the calls services make to each other most: unary and
 * server-streaming gRPC with binary protobuf over HTTP/2. It serves them on node:http2's
 * stream API, with the same service implementations, the router's own limits
 * and the same per-call pipeline (call-pipeline.ts) as every other call, but
 * without Connect's universal pipeline of async iterables, Headers objects
 * and AbortSignals, which costs several times the handler itself (GC of
 * short-lived generator objects, DOMExceptions from abort()).
 *
 * Everything else, and anything unusual about a call that only Connect
 * handles (client and bidi streams, the Connect and gRPC-Web protocols, JSON, an
 * unknown grpc-encoding, a service registered with its own options), is
 * left to Connect: `serve` returns false after looking only at the headers.
 *
 * What a caller sees is the same on both paths, byte for byte apart from the
 * date header: test/grpc-fast-path.test.ts sends a corpus of calls to both
 * and compares status, message, headers, trailers and payload.
 */

import type http2 from "node:http2";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  isMessage,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ContextValues,
  type HandlerContext,
} from "@connectrpc/connect";
import { type Compression, compressedFlag } from "@connectrpc/connect/protocol";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { encodeBinary } from "./binary-encoding.js";
import type { CallPipeline } from "./call-pipeline.js";
import { isShared } from "./shared-answers.js";

export interface GrpcFastPathOptions {
  pipeline: CallPipeline;
  /** Largest request message, as Connect's readMaxBytes. */
  readMaxBytes: number;
  /** The encodings Connect accepts (connect-node: gzip, br), in its order of preference. */
  acceptCompression: readonly Compression[];
  /** Responses smaller than this are sent uncompressed, as Connect's compressMinBytes. */
  compressMinBytes: number;
  /** Aborts every call's signal when the server gives up on its grace period. */
  shutdownSignal: AbortSignal;
  /** The context values a call starts with (the peer's address). */
  contextValues: (stream: ServerHttp2Stream) => ContextValues;
}

type MethodImpl = (request: unknown, context: HandlerContext) => unknown;
/** A method the direct path serves: unary, or server streaming (one request, a stream of answers). */
interface Route {
  method: DescMethod;
  impl: MethodImpl;
}
const directKinds = new Set<DescMethod["methodKind"]>(["unary", "server_streaming"]);

const grpcProto = "application/grpc+proto";

export class GrpcFastPath {
  private readonly routes = new Map<string, Route>();
  /** Calls this path has taken (tests check the path is really used). */
  served = 0;

  constructor(private readonly options: GrpcFastPathOptions) {}

  /**
   * The router the services register on, wrapped: every unary and
   * server-streaming method is also remembered for the direct path. Connect
   * still gets every service.
   */
  record(router: ConnectRouter): ConnectRouter {
    const wrapper: ConnectRouter = {
      get handlers() {
        return router.handlers;
      },
      service: (service, implementation, options) => {
        if (options === undefined) {
          for (const method of service.methods) {
            const fn = (implementation as Record<string, unknown>)[method.localName];
            // Unimplemented methods are Connect's to refuse, with its own message.
            if (typeof fn === "function") this.remember(method, fn.bind(implementation));
          }
        }
        router.service(service, implementation, options);
        return wrapper;
      },
      rpc: (method, impl, options) => {
        if (options === undefined) this.remember(method, impl as MethodImpl);
        router.rpc(method, impl, options);
        return wrapper;
      },
    };
    return wrapper;
  }

  private remember(method: DescMethod, impl: MethodImpl) {
    if (!directKinds.has(method.methodKind)) return;
    this.routes.set(`/${method.parent.typeName}/${method.name}`, { method, impl });
  }

  /**
   * Serves the call to `path` (the request's path without its query) and
   * returns true, or returns false, having done nothing, for Connect.
   */
  serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string): boolean {
    if (headers[":method"] !== "POST") return false;
    const route = this.routes.get(path);
    if (route === undefined) return false;
    const contentType = headers["content-type"];
    if (contentType !== "application/grpc" && contentType !== grpcProto) return false;
    const encoding = headers["grpc-encoding"];
    let requestCompression: Compression | null = null;
    if (encoding !== undefined && encoding !== "identity") {
      const found = this.options.acceptCompression.find((c) => c.name === encoding);
      if (found === undefined) return false;
      requestCompression = found;
    }
    this.served++;
    if (route.method.methodKind === "unary") {
      void this.handle(stream, headers, route, requestCompression);
    } else {
      void this.handleServerStream(stream, headers, route, requestCompression);
    }
    return true;
  }

  private async handle(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    route: Route,
    requestCompression: Compression | null,
  ): Promise<void> {
    const { pipeline } = this.options;
    const { call, timeout, responseCompression } = this.begin(
      stream,
      headers,
      route,
      requestCompression,
    );
    let envelope: Uint8Array | undefined;
    let failure: ConnectError | undefined;
    try {
      const request = await this.receive(stream, call, timeout.error, requestCompression);
      const response = await pipeline.unary(call, async () =>
        normalize(route.method.output, await route.impl(request, call)),
      );
      const encoded = this.encode(route.method.output, response, responseCompression);
      envelope = encoded instanceof Promise ? await encoded : encoded;
    } catch (error) {
      failure = asConnectError(error);
    }
    call.end();
    if (stream.destroyed || stream.closed) return;
    stream.respond(call.responseHeaders(responseCompression), { waitForTrailers: true });
    stream.once("wantTrailers", () => {
      if (!stream.destroyed) stream.sendTrailers(call.responseTrailers(failure));
    });
    if (envelope === undefined) stream.end();
    else stream.end(envelope);
  }

  /**
   * A server-streaming call: the same request handling, then each answer
   * framed and written as the handler yields it, with the stream's flow
   * control. Headers go out with the first answer (a handler may still set
   * them before it), trailers when the handler ends or fails. An answer
   * marked with sendShared (shared-answers.ts) is encoded once for all streams.
   */
  private async handleServerStream(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    route: Route,
    requestCompression: Compression | null,
  ): Promise<void> {
    const { call, timeout, responseCompression } = this.begin(
      stream,
      headers,
      route,
      requestCompression,
    );
    const gone = () => stream.destroyed || stream.closed;
    let headersSent = false;
    const sendHeaders = () => {
      if (headersSent) return;
      headersSent = true;
      stream.respond(call.responseHeaders(responseCompression), { waitForTrailers: true });
    };
    let failure: ConnectError | undefined;
    let responses: AsyncIterator<unknown> | undefined;
    try {
      const request = await this.receive(stream, call, timeout.error, requestCompression);
      responses = this.options.pipeline
        .serverStream(call, () => route.impl(request, call) as AsyncIterable<unknown>)
        [Symbol.asyncIterator]();
      for (;;) {
        const next = await responses.next();
        if (next.done) break;
        if (gone()) break;
        const encoded = this.encodeAnswer(route.method.output, next.value, responseCompression);
        const envelope = encoded instanceof Promise ? await encoded : encoded;
        sendHeaders();
        if (!stream.write(envelope)) await drained(stream);
      }
    } catch (error) {
      failure = asConnectError(error);
    }
    if (gone()) {
      // The client went away: the handler learns it from its signal, and
      // stops here if it had not.
      call.end();
      await responses?.return?.(undefined).catch(ignore);
      return;
    }
    call.end();
    sendHeaders();
    stream.once("wantTrailers", () => {
      if (!stream.destroyed) stream.sendTrailers(call.responseTrailers(failure));
    });
    stream.end();
  }

  /** What every call on this path starts with: its context, its deadline and its answer's encoding. */
  private begin(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    route: Route,
    requestCompression: Compression | null,
  ) {
    // Errors on the stream (a client reset) end the call through its
    // signal and the checks below, instead of surfacing as events.
    stream.on("error", ignore);
    const timeout = parseTimeout(headerValue(headers["grpc-timeout"]), Number.MAX_SAFE_INTEGER);
    const call = new DirectCall(route.method, headers, stream, timeout.timeoutMs, this.options);
    const responseCompression = negotiateResponse(
      this.options.acceptCompression,
      requestCompression,
      headerValue(headers["grpc-accept-encoding"]),
    );
    return { call, timeout, responseCompression };
  }

  /** The request of a call the gate lets in: read, checked, decompressed and parsed, as Connect does. */
  private async receive(
    stream: ServerHttp2Stream,
    call: DirectCall,
    timeoutError: ConnectError | undefined,
    compression: Compression | null,
  ): Promise<unknown> {
    const { pipeline, readMaxBytes } = this.options;
    // The gate runs before the body is read: a refused call's body never is.
    const admitted = pipeline.admit(call);
    if (admitted !== undefined) await admitted;
    if (timeoutError) throw timeoutError;
    const kind = call.method.methodKind === "unary" ? "unary" : "server-streaming";
    const received = await readEnvelope(stream, readMaxBytes, kind);
    const bytes =
      received.flags === 0 ? received.data : await unwrap(received, compression, readMaxBytes);
    return parse(call.method.input, bytes);
  }

  /** An answer's envelope; a shared answer's is made once (a watch event: once for every watcher). */
  private encodeAnswer(
    desc: DescMessage,
    answer: unknown,
    compression: Compression | null,
  ): Uint8Array | Promise<Uint8Array> {
    // Compressed answers are not cached: few streams ask for compression.
    if (compression !== null || !isShared(answer)) {
      return this.encode(desc, normalize(desc, answer), compression);
    }
    let envelope = sharedEncodings.get(answer);
    if (envelope === undefined) {
      envelope = this.encode(desc, normalize(desc, answer), null) as Uint8Array;
      sharedEncodings.set(answer, envelope);
    }
    return envelope;
  }

  /** An answer as a gRPC envelope: encoded straight after the envelope's 5 bytes, compressed if worth it. */
  private encode(
    desc: DescMessage,
    message: ReturnType<typeof normalize>,
    compression: Compression | null,
  ): Uint8Array | Promise<Uint8Array> {
    const envelope = encodeChecked(desc, message);
    if (compression === null || envelope.byteLength - 5 < this.options.compressMinBytes) {
      return withEnvelopeHeader(envelope, 0);
    }
    return compression
      .compress(envelope.subarray(5))
      .then((compressed) => frame(compressed, compressedFlag));
  }
}

/** Encoded answers marked with sendShared, each made once. */
const sharedEncodings = new WeakMap<object, Uint8Array>();

function asConnectError(error: unknown): ConnectError {
  return error instanceof ConnectError
    ? error
    : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
}

/** Resolves when the stream can take more, or has closed. */
function drained(stream: ServerHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.once("drain", done);
    stream.once("close", done);
  });
}

/** A gRPC length-prefixed message. */
function frame(data: Uint8Array, flags: number): Buffer {
  const envelope = Buffer.allocUnsafe(data.byteLength + 5);
  envelope.set(data, 5);
  return withEnvelopeHeader(envelope, flags);
}

/** Writes the 5-byte header (flags, big-endian length) in front of the message already at byte 5. */
function withEnvelopeHeader(envelope: Buffer, flags: number): Buffer {
  envelope[0] = flags;
  envelope.writeUInt32BE(envelope.byteLength - 5, 1);
  return envelope;
}

const ignore = () => {};

function headerValue(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(", ") : value;
}

/** Connect's choice of response encoding: the first the client accepts, else the request's. */
function negotiateResponse(
  available: readonly Compression[],
  request: Compression | null,
  accepted: string | null,
): Compression | null {
  if (accepted === null || accepted === "") return request;
  for (const name of accepted.split(",")) {
    const found = available.find((c) => c.name === name.trim());
    if (found) return found;
  }
  return null;
}

function normalize(desc: DescMessage, value: unknown) {
  return isMessage(value, desc) ? value : create(desc, value as never);
}

function parse(desc: DescMessage, bytes: Uint8Array) {
  try {
    return fromBinary(desc, bytes);
  } catch (e) {
    throw new ConnectError(
      `parse binary: ${e instanceof Error ? e.message : String(e)}`,
      Code.Internal,
    );
  }
}

/** The message with 5 free bytes in front for its envelope; a failure as Connect reports it. */
function encodeChecked(desc: DescMessage, message: ReturnType<typeof normalize>): Buffer {
  try {
    return encodeBinary(desc, message, 5);
  } catch (e) {
    throw new ConnectError(
      `serialize binary: ${e instanceof Error ? e.message : String(e)}`,
      Code.Internal,
    );
  }
}

interface Envelope {
  flags: number;
  data: Uint8Array;
}

/**
 * The one message of a unary request, with Connect's checks and messages:
 * its size against readMaxBytes (as soon as its header arrives), no second
 * message, no incomplete envelope. Whatever else the client sends is read
 * and dropped once the answer is known, as Connect does.
 */
function readEnvelope(
  stream: ServerHttp2Stream,
  readMaxBytes: number,
  kind: "unary" | "server-streaming",
): Promise<Envelope> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;
    const settle = (error: unknown, envelope?: Envelope) => {
      if (settled) return;
      settled = true;
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("close", onEnd);
      stream.resume();
      if (envelope === undefined) reject(error);
      else resolve(envelope);
    };
    const inspect = (ended: boolean) => {
      const firstLength = buffered.byteLength >= 5 ? buffered.readUInt32BE(1) : -1;
      if (firstLength > readMaxBytes) return settle(tooLarge(firstLength, readMaxBytes));
      const secondAt = firstLength >= 0 ? 5 + firstLength : -1;
      if (secondAt >= 0 && buffered.byteLength >= secondAt + 5) {
        const secondLength = buffered.readUInt32BE(secondAt + 1);
        if (secondLength > readMaxBytes) return settle(tooLarge(secondLength, readMaxBytes));
        if (buffered.byteLength >= secondAt + 5 + secondLength) return settle(extraMessage(kind));
      }
      if (!ended) return;
      if (buffered.byteLength === 0) {
        return settle(
          new ConnectError(
            `protocol error: missing input message for ${kind} method`,
            Code.Unimplemented,
          ),
        );
      }
      if (buffered.byteLength !== secondAt) {
        return settle(
          new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument),
        );
      }
      settle(undefined, {
        flags: buffered[0] as number,
        data: new Uint8Array(buffered.buffer, buffered.byteOffset + 5, firstLength),
      });
    };
    const onData = (chunk: Buffer) => {
      buffered = buffered.byteLength === 0 ? chunk : Buffer.concat([buffered, chunk]);
      inspect(false);
    };
    const onEnd = () => inspect(true);
    // An empty body can have ended already, while the gate ran.
    if (stream.readableEnded || stream.closed || stream.destroyed) return onEnd();
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.once("close", onEnd);
  });
}

/** The message's bytes, decompressed when its envelope says it is compressed. */
async function unwrap(
  envelope: Envelope,
  compression: Compression | null,
  readMaxBytes: number,
): Promise<Uint8Array> {
  if ((envelope.flags & compressedFlag) !== compressedFlag) return envelope.data;
  if (compression === null) {
    throw new ConnectError(
      "received compressed envelope, but do not know how to decompress",
      Code.Internal,
    );
  }
  return compression.decompress(envelope.data, readMaxBytes);
}

function tooLarge(size: number, readMaxBytes: number) {
  return new ConnectError(
    `message size ${size} is larger than configured readMaxBytes ${readMaxBytes}`,
    Code.ResourceExhausted,
  );
}

function extraMessage(kind: string) {
  return new ConnectError(
    `protocol error: received extra input message for ${kind} method`,
    Code.Unimplemented,
  );
}

/**
 * The HandlerContext of a call on the direct path. What most calls never
 * touch is made only when touched: the AbortSignal (and with it the deadline
 * timer), the request Headers, and the response headers and trailers.
 */
class DirectCall implements HandlerContext {
  readonly service: DescService;
  readonly requestMethod = "POST";
  readonly protocolName = "grpc";
  readonly values: ContextValues;
  private readonly deadline: number | undefined;
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  private requestHeaders: Headers | undefined;
  private responseHeaders_: Headers | undefined;
  private responseTrailers_: Headers | undefined;

  constructor(
    readonly method: DescMethod,
    private readonly headers: IncomingHttpHeaders,
    private readonly stream: ServerHttp2Stream,
    timeoutMs: number | undefined,
    private readonly options: GrpcFastPathOptions,
  ) {
    this.service = method.parent;
    this.values = options.contextValues(stream);
    this.deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  }

  get url(): string {
    return `http://${this.headers[":authority"] ?? this.headers.host}${this.headers[":path"]}`;
  }

  readonly timeoutMs = (): number | undefined =>
    this.deadline === undefined ? undefined : this.deadline - Date.now();

  get signal(): AbortSignal {
    if (this.controller !== undefined) return this.controller.signal;
    const controller = new AbortController();
    this.controller = controller;
    const shutdown = this.options.shutdownSignal;
    const stream = this.stream;
    // A client that reset the stream (it gave up) has cancelled the call.
    const clientGone = !this.ended && (stream.closed || stream.destroyed);
    if (clientGone) controller.abort(resetReason(stream.rstCode));
    else if (shutdown.aborted) controller.abort(shutdown.reason);
    else if (this.ended) controller.abort();
    else if (this.deadline !== undefined && this.deadline <= Date.now()) {
      controller.abort(deadlineExceeded());
    } else {
      if (this.deadline !== undefined) {
        this.timer = setTimeout(
          () => controller.abort(deadlineExceeded()),
          this.deadline - Date.now(),
        );
      }
      const onShutdown = () => controller.abort(shutdown.reason);
      const onClose = () => {
        if (!this.ended) controller.abort(resetReason(stream.rstCode));
      };
      shutdown.addEventListener("abort", onShutdown, { once: true });
      stream.once("close", onClose);
      controller.signal.addEventListener(
        "abort",
        () => {
          shutdown.removeEventListener("abort", onShutdown);
          stream.off("close", onClose);
        },
        { once: true },
      );
    }
    return controller.signal;
  }

  get requestHeader(): Headers {
    this.requestHeaders ??= new NodeRequestHeaders(this.headers);
    return this.requestHeaders;
  }

  get responseHeader(): Headers {
    this.responseHeaders_ ??= new Headers({ "content-type": grpcProto });
    return this.responseHeaders_;
  }

  get responseTrailer(): Headers {
    this.responseTrailers_ ??= new Headers({ "grpc-status": "0" });
    return this.responseTrailers_;
  }

  /** The call is over: what was linked to its signal is let go, as Connect does. */
  end(): void {
    this.ended = true;
    clearTimeout(this.timer);
    if (this.controller !== undefined && !this.controller.signal.aborted) this.controller.abort();
  }

  responseHeaders(compression: Compression | null): http2.OutgoingHttpHeaders {
    if (this.responseHeaders_ === undefined) {
      return compression === null
        ? { ":status": 200, "content-type": grpcProto }
        : { ":status": 200, "content-type": grpcProto, "grpc-encoding": compression.name };
    }
    if (compression !== null) this.responseHeaders_.set("grpc-encoding", compression.name);
    return { ":status": 200, ...nodeHeaders(this.responseHeaders_) };
  }

  responseTrailers(error: ConnectError | undefined): http2.OutgoingHttpHeaders {
    if (error === undefined && this.responseTrailers_ === undefined) return { "grpc-status": "0" };
    return nodeHeaders(setTrailerStatus(this.responseTrailer, error));
  }
}

function deadlineExceeded() {
  return new ConnectError("the operation timed out", Code.DeadlineExceeded);
}

/** HTTP/2 error codes by number, as connect-node names them in messages. */
const h2Codes = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];
const h2ResetCodes: Partial<Record<number, Code>> = {
  1: Code.Internal,
  2: Code.Internal,
  3: Code.Internal,
  4: Code.Internal,
  6: Code.Internal,
  9: Code.Internal,
  10: Code.Internal,
  7: Code.Unavailable,
  8: Code.Canceled,
  11: Code.ResourceExhausted,
  12: Code.PermissionDenied,
  13: Code.PermissionDenied,
};

/** Connect-node's reading of a client's HTTP/2 reset, as the call's abort reason. */
function resetReason(rstCode: number | undefined): ConnectError | undefined {
  const code = rstCode === undefined ? undefined : h2ResetCodes[rstCode];
  if (code === undefined || rstCode === undefined) return undefined;
  return new ConnectError(
    `http/2 stream closed with error code ${h2Codes[rstCode]} (0x${rstCode.toString(16)})`,
    code,
  );
}

/**
 * Node's request headers as the Headers a handler reads, pseudo-headers left
 * out (as Connect does). Nearly every call reads one header (authorization,
 * in the gate) and nothing else, so `get` and `has` read Node's object
 * directly; anything else copies the headers in first.
 */
class NodeRequestHeaders extends Headers {
  raw: IncomingHttpHeaders | undefined;

  constructor(raw: IncomingHttpHeaders) {
    super();
    this.raw = raw;
  }
}

const headersProto = Headers.prototype;

/** Copies Node's headers in, once, before any Headers method other than get/has runs. */
function copyIn(headers: NodeRequestHeaders): void {
  const raw = headers.raw;
  if (raw === undefined) return;
  headers.raw = undefined;
  for (const [name, value] of Object.entries(raw)) {
    if (name.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headersProto.append.call(headers, name, v);
    else headersProto.append.call(headers, name, String(value));
  }
}

// Headers' members are own-property functions in Node's typings, so they are
// replaced on the prototype rather than overridden in the class body.
Object.assign(NodeRequestHeaders.prototype, {
  get(this: NodeRequestHeaders, name: string): string | null {
    if (this.raw === undefined) return headersProto.get.call(this, name);
    const key = name.toLowerCase();
    const value = key.startsWith(":") ? undefined : this.raw[key];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(", ") : String(value);
  },
  has(this: NodeRequestHeaders, name: string): boolean {
    return this.get(name) !== null;
  },
  ...Object.fromEntries(
    (
      ["append", "set", "delete", "getSetCookie", "forEach", "entries", "keys", "values"] as const
    ).map((member) => [
      member,
      function (this: NodeRequestHeaders, ...args: unknown[]) {
        copyIn(this);
        return (headersProto[member] as (...a: unknown[]) => unknown).apply(this, args);
      },
    ]),
  ),
  [Symbol.iterator](this: NodeRequestHeaders) {
    copyIn(this);
    return headersProto.entries.call(this);
  },
});

function nodeHeaders(headers: Headers): http2.OutgoingHttpHeaders {
  const result: http2.OutgoingHttpHeaders = {};
  headers.forEach((value, name) => {
    result[name] = value;
  });
  return result;
}

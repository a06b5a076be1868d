/**
 * A server-streaming gRPC call read straight off node:http2, for the watch
 * fan-out: thousands of streams decoded through a full gRPC client's
 * per-message pipeline cost the bench's one core more than the server's,
 * and the bench would measure itself. This reads the length-prefixed frames
 * and hands each message's bytes on; the caller decodes what it needs.
 */
import http2 from "node:http2";

export function rawStreamSessions(url: string, count: number): http2.ClientHttp2Session[] {
  return Array.from({ length: count }, () => {
    const session = http2.connect(url);
    session.on("error", () => {});
    return session;
  });
}

/**
 * Calls `path` with one request message on `session` and calls `onMessage`
 * with each answer's bytes; resolves with grpc-status when the stream ends
 * (or "aborted" when `signal` ends it).
 */
export function rawServerStream(
  session: http2.ClientHttp2Session,
  path: string,
  headers: Record<string, string>,
  request: Uint8Array,
  onMessage: (bytes: Uint8Array) => void,
  signal: AbortSignal,
): Promise<string> {
  return new Promise((resolve) => {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    let status = "no trailers";
    let buffered: Buffer = Buffer.alloc(0);
    stream.on("trailers", (trailers) => {
      status = String(trailers["grpc-status"] ?? "missing");
    });
    stream.on("data", (chunk: Buffer) => {
      buffered = buffered.byteLength === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.byteLength >= 5) {
        const length = buffered.readUInt32BE(1);
        if (buffered.byteLength < 5 + length) break;
        onMessage(buffered.subarray(5, 5 + length));
        buffered = buffered.subarray(5 + length);
      }
    });
    stream.on("error", () => {});
    stream.on("close", () => resolve(signal.aborted ? "aborted" : status));
    const frame = Buffer.alloc(5 + request.byteLength);
    frame.writeUInt32BE(request.byteLength, 1);
    frame.set(request, 5);
    stream.end(frame);
    signal.addEventListener("abort", () => stream.close(http2.constants.NGHTTP2_CANCEL), {
      once: true,
    });
  });
}

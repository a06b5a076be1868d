/**
 * grpc-js speaking protobuf-es: a service definition built from the same
 * descriptor and the same toBinary/fromBinary that Connect uses, so grpc-js
 * rows measure the transport, not a different protobuf library
 * (@grpc/proto-loader would bring protobufjs).
 */
import { type DescService, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);

export function grpcJsDefinition(service: DescService): ServiceDefinition {
  const methods: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const { input, output, methodKind } = method;
    methods[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: methodKind === "client_streaming" || methodKind === "bidi_streaming",
      responseStream: methodKind === "server_streaming" || methodKind === "bidi_streaming",
      // biome-ignore lint/suspicious/noExplicitAny: grpc-js definitions are untyped at this level.
      requestSerialize: (message: any) => asBuffer(toBinary(input, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(input, bytes),
      // biome-ignore lint/suspicious/noExplicitAny: as above.
      responseSerialize: (message: any) => asBuffer(toBinary(output, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
      originalName: method.localName,
    };
  }
  return methods;
}

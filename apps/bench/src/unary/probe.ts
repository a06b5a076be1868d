/**
 * Before any load, a real client calls the server and checks every answer:
 * h2load sees only HTTP statuses, and a gRPC failure is HTTP 200 with a
 * grpc-status in the trailers.
 */
import { create, equals, toJson } from "@bufbuild/protobuf";
import {
  credentials,
  Metadata,
  makeGenericClientConstructor,
  type ServiceError,
} from "@grpc/grpc-js";
import {
  type GetUserRequest,
  GetUserRequestSchema,
  type GetUserResponse,
  UserSchema,
  UserService,
} from "@meridian/proto/meridian/user/v1/user_pb";
import { createTestClient } from "@meridian/testkit";
import { sampleUser } from "../samples.js";
import { grpcJsDefinition } from "./grpc-js.js";
import type { UnaryMode } from "./modes.js";

const calls = 200;
const concurrency = 20;

/** Makes `calls` calls, `concurrency` at a time; throws unless every one returned the sample user. */
export async function probe(mode: UnaryMode, baseUrl: string, token: string): Promise<void> {
  const { call, close } = callers[mode.probe](baseUrl, token);
  try {
    let next = 0;
    const worker = async () => {
      while (next++ < calls) await call();
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  } catch (error) {
    throw new Error(`${mode.label}: the ${mode.probe} probe failed: ${String(error)}`);
  } finally {
    close?.();
  }
}

type GrpcJsUnary<I, O> = (
  request: I,
  metadata: Metadata,
  callback: (error: ServiceError | null, response: O) => void,
) => unknown;

type Caller = (baseUrl: string, token: string) => { call: () => Promise<void>; close?: () => void };

const expectSampleUser = (response: GetUserResponse) => {
  if (response.user === undefined || !equals(UserSchema, response.user, sampleUser)) {
    throw new Error("the response is not the sample user");
  }
};

const callers: Record<UnaryMode["probe"], Caller> = {
  connect(baseUrl, token) {
    const client = createTestClient(UserService, baseUrl, "grpc", token);
    return { call: async () => expectSampleUser(await client.getUser({ id: sampleUser.id })) };
  },
  "grpc-js"(baseUrl, token) {
    const Client = makeGenericClientConstructor(grpcJsDefinition(UserService), "UserService");
    const client = new Client(new URL(baseUrl).host, credentials.createInsecure());
    const metadata = new Metadata();
    metadata.set("authorization", `Bearer ${token}`);
    const request = create(GetUserRequestSchema, { id: sampleUser.id });
    // Generic clients are untyped: this is the shape grpc-js gives unary methods.
    const getUser = (client.getUser as GrpcJsUnary<GetUserRequest, GetUserResponse>).bind(client);
    const call = () =>
      new Promise<void>((resolve, reject) => {
        getUser(request, metadata, (error, response) => {
          if (error) return reject(error);
          try {
            expectSampleUser(response);
            resolve();
          } catch (mismatch) {
            reject(mismatch);
          }
        });
      });
    return { call, close: () => client.close() };
  },
  rest(baseUrl, token) {
    const expected = JSON.stringify(toJson(UserSchema, sampleUser));
    const call = async () => {
      const response = await fetch(`${baseUrl}/users/${sampleUser.id}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
      if (JSON.stringify(await response.json()) !== expected) {
        throw new Error("the response is not the sample user");
      }
    };
    return { call };
  },
};

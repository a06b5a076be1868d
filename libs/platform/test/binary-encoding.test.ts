/**
 * encodeBinary must write exactly what protobuf-es's toBinary writes, and
 * fail exactly as it fails. Checked on every message type Meridian sends,
 * the well-known types and descriptor.proto (proto2: explicit presence,
 * defaults on the prototype), and a type made here with every scalar kind,
 * packed and unpacked lists, oneofs, optional fields and recursion, each
 * filled with edge values from a seeded generator.
 */
import {
  create,
  createFileRegistry,
  createRegistry,
  type DescField,
  type DescMessage,
  type Registry,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_any,
  file_google_protobuf_descriptor,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
} from "@bufbuild/protobuf/wkt";
import { file_google_rpc_error_details } from "@meridian/proto/google/rpc/error_details_pb";
import { file_grpc_health_v1_health } from "@meridian/proto/grpc/health/v1/health_pb";
import { file_meridian_common_v1_common } from "@meridian/proto/meridian/common/v1/common_pb";
import { file_meridian_order_v1_order } from "@meridian/proto/meridian/order/v1/order_pb";
import { file_meridian_payment_v1_payment } from "@meridian/proto/meridian/payment/v1/payment_pb";
import { file_meridian_user_v1_user } from "@meridian/proto/meridian/user/v1/user_pb";
import { describe, expect, it } from "vitest";
import { encodeBinary, encodesDirectly } from "../src/binary-encoding.js";

/** A proto3 file with every kind of field the fast encoder writes, and the message types it leaves to toBinary. */
const everyKind = (() => {
  const scalars: [string, Type][] = [
    ["double", Type.DOUBLE],
    ["float", Type.FLOAT],
    ["int64", Type.INT64],
    ["uint64", Type.UINT64],
    ["int32", Type.INT32],
    ["fixed64", Type.FIXED64],
    ["fixed32", Type.FIXED32],
    ["bool", Type.BOOL],
    ["string", Type.STRING],
    ["bytes", Type.BYTES],
    ["uint32", Type.UINT32],
    ["sfixed32", Type.SFIXED32],
    ["sfixed64", Type.SFIXED64],
    ["sint32", Type.SINT32],
    ["sint64", Type.SINT64],
  ];
  const fields: object[] = [];
  // Each proto3 optional field is alone in a synthetic oneof named after it.
  const oneofs: { name: string }[] = [];
  let number = 1;
  for (const [name, type] of scalars) {
    fields.push({ name: `s_${name}`, number: number++, type, label: Label.OPTIONAL });
    fields.push({
      name: `o_${name}`,
      number: number++,
      type,
      label: Label.OPTIONAL,
      proto3Optional: true,
      oneofIndex: oneofs.push({ name: `_o_${name}` }) - 1,
    });
    fields.push({ name: `r_${name}`, number: number++, type, label: Label.REPEATED });
    fields.push({
      name: `u_${name}`,
      number: number++,
      type,
      label: Label.REPEATED,
      ...(type === Type.STRING || type === Type.BYTES ? {} : { options: { packed: false } }),
    });
  }
  const choice = oneofs.push({ name: "choice" }) - 1;
  // Big field numbers: tags of several bytes.
  const message = (name: string, number: number, label = Label.OPTIONAL, oneofIndex?: number) => ({
    name,
    number,
    type: Type.MESSAGE,
    typeName: ".kinds.Every",
    label,
    ...(oneofIndex === undefined ? {} : { oneofIndex }),
  });
  fields.push(message("child", 1000));
  fields.push(message("children", 1001, Label.REPEATED));
  fields.push({ name: "color", number: 2000, type: Type.ENUM, typeName: ".kinds.Color" });
  fields.push({
    name: "colors",
    number: 2001,
    type: Type.ENUM,
    typeName: ".kinds.Color",
    label: Label.REPEATED,
  });
  fields.push(message("choice_message", 300000, Label.OPTIONAL, choice));
  fields.push({ name: "choice_string", number: 300001, type: Type.STRING, oneofIndex: choice });
  fields.push({ name: "choice_int64", number: 300002, type: Type.INT64, oneofIndex: choice });
  fields.push({
    name: "stamp",
    number: 4000,
    type: Type.MESSAGE,
    typeName: ".google.protobuf.Timestamp",
  });
  fields.push({
    name: "wrapped_in_oneof",
    number: 4001,
    type: Type.MESSAGE,
    typeName: ".google.protobuf.StringValue",
    oneofIndex: choice,
  });
  const file = create(FileDescriptorProtoSchema, {
    name: "kinds.proto",
    package: "kinds",
    syntax: "proto3",
    dependency: ["google/protobuf/timestamp.proto", "google/protobuf/wrappers.proto"],
    enumType: [
      {
        name: "Color",
        value: [
          { name: "COLOR_UNSPECIFIED", number: 0 },
          { name: "COLOR_RED", number: 1 },
          { name: "COLOR_NEGATIVE", number: -3 },
        ],
      },
    ],
    messageType: [
      {
        name: "Every",
        field: fields,
        oneofDecl: oneofs,
      },
      {
        // Left to toBinary: a wrapper as a plain value, and a map.
        name: "Unboxed",
        field: [
          {
            name: "name",
            number: 1,
            type: Type.MESSAGE,
            typeName: ".google.protobuf.StringValue",
          },
        ],
      },
      {
        name: "WithMap",
        field: [
          {
            name: "labels",
            number: 1,
            type: Type.MESSAGE,
            typeName: ".kinds.WithMap.LabelsEntry",
            label: Label.REPEATED,
          },
        ],
        nestedType: [
          {
            name: "LabelsEntry",
            field: [
              { name: "key", number: 1, type: Type.STRING },
              { name: "value", number: 2, type: Type.STRING },
            ],
            options: { mapEntry: true },
          },
        ],
      },
    ],
  });
  return createFileRegistry(file, (name) =>
    name === "google/protobuf/timestamp.proto"
      ? file_google_protobuf_timestamp
      : name === "google/protobuf/wrappers.proto"
        ? file_google_protobuf_wrappers
        : undefined,
  );
})();

const meridian = createRegistry(
  file_meridian_common_v1_common,
  file_meridian_user_v1_user,
  file_meridian_order_v1_order,
  file_meridian_payment_v1_payment,
  file_grpc_health_v1_health,
  file_google_rpc_error_details,
  file_google_protobuf_any,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
  file_google_protobuf_descriptor,
);

function messagesOf(registry: Registry): DescMessage[] {
  return [...registry].filter((type): type is DescMessage => type.kind === "message");
}

/** A small seeded generator (mulberry32): the same messages on every run. */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const edgeValues: Record<ScalarType, unknown[]> = {
  [ScalarType.DOUBLE]: [0, -0, 1.5, -2.25, Number.NaN, Infinity, -Infinity, 1e300, 5e-324],
  [ScalarType.FLOAT]: [0, -0, 1.5, Number.NaN, Infinity, 3.4028234663852886e38, 1e-45],
  [ScalarType.INT64]: [0n, 1n, -1n, 300n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 35n],
  [ScalarType.UINT64]: [0n, 1n, 127n, 128n, 2n ** 64n - 1n, 2n ** 63n, 2n ** 32n],
  [ScalarType.INT32]: [0, 1, -1, 127, 128, 300, 2 ** 31 - 1, -(2 ** 31)],
  [ScalarType.FIXED64]: [0n, 1n, 2n ** 64n - 1n, 2n ** 40n],
  [ScalarType.FIXED32]: [0, 1, 2 ** 32 - 1],
  [ScalarType.BOOL]: [false, true],
  [ScalarType.STRING]: [
    "",
    "a",
    "x".repeat(42),
    "x".repeat(43),
    "x".repeat(127),
    "x".repeat(128),
    "y".repeat(5000),
    "héllo wörld",
    "€".repeat(42),
    "€".repeat(43),
    "😀 emoji",
    "lone \ud800 surrogate",
    "\udfff",
  ],
  [ScalarType.BYTES]: [new Uint8Array(0), new Uint8Array([0, 255, 7]), new Uint8Array(300).fill(9)],
  [ScalarType.UINT32]: [0, 1, 127, 128, 16383, 16384, 2 ** 32 - 1],
  [ScalarType.SFIXED32]: [0, -1, 2 ** 31 - 1, -(2 ** 31)],
  [ScalarType.SFIXED64]: [0n, -1n, 2n ** 63n - 1n, -(2n ** 63n)],
  [ScalarType.SINT32]: [0, -1, 1, -64, 64, 2 ** 31 - 1, -(2 ** 31)],
  [ScalarType.SINT64]: [0n, -1n, 1n, -(2n ** 63n), 2n ** 63n - 1n],
};

function fill(desc: DescMessage, next: () => number, depth: number): Record<string, unknown> {
  const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)] as T;
  const message = create(desc) as unknown as Record<string, unknown>;
  const valueFor = (field: DescField): unknown => {
    switch (field.fieldKind) {
      case "scalar":
        return pick(edgeValues[field.scalar]);
      case "enum":
        return next() < 0.1 ? 99 : pick(field.enum.values).number;
      case "message":
        return depth > 2 ? undefined : fill(field.message, next, depth + 1);
      case "list": {
        // Long lists of scalars (packed lengths past one byte); short lists of messages.
        const length = pick(field.listKind === "message" ? [0, 1, 3] : [0, 1, 3, 70]);
        return Array.from({ length }, () =>
          field.listKind === "message"
            ? depth > 2
              ? create(field.message)
              : fill(field.message, next, depth + 1)
            : field.listKind === "enum"
              ? pick(field.enum.values).number
              : pick(edgeValues[field.scalar]),
        );
      }
      case "map":
        return {};
    }
  };
  for (const oneof of desc.oneofs) {
    if (next() < 0.3) continue;
    const field = pick(oneof.fields);
    const value = valueFor(field);
    if (value !== undefined) message[oneof.localName] = { case: field.localName, value };
  }
  for (const field of desc.fields) {
    if (field.oneof || next() < 0.3) continue;
    const value = valueFor(field);
    if (value !== undefined) message[field.localName] = value;
  }
  if (next() < 0.1) {
    message.$unknown = [
      { no: 9999, wireType: 0, data: new Uint8Array([150, 1]) },
      { no: 10_000, wireType: 2, data: new Uint8Array([2, 104, 105]) },
    ];
  }
  return message;
}

/** Both encoders on one message: the same bytes, or the same error. */
function outcome(encode: () => Uint8Array): Buffer | string {
  try {
    return Buffer.from(encode());
  } catch (error) {
    return String(error);
  }
}

function expectSame(desc: DescMessage, message: object) {
  const expected = outcome(() => toBinary(desc, message as never));
  const actual = [
    outcome(() => encodeBinary(desc, message)),
    // With room for the gRPC envelope in front, the message follows it.
    outcome(() => encodeBinary(desc, message, 5).subarray(5)),
  ];
  for (const got of actual) {
    if (typeof expected === "string" || typeof got === "string") expect(got).toEqual(expected);
    else if (!got.equals(expected)) {
      // Only now the (long) hex: the first differing byte shows where.
      expect(got.toString("hex")).toEqual(expected.toString("hex"));
    }
  }
}

describe("encodeBinary", () => {
  it("writes what toBinary writes, for every message type Meridian uses", () => {
    const types = messagesOf(meridian);
    expect(types.length).toBeGreaterThan(60);
    // Every Meridian message is written here, not left to toBinary.
    const leftToToBinary = types
      .filter((type) => type.typeName.startsWith("meridian.") && !encodesDirectly(type))
      .map((type) => type.typeName);
    expect(leftToToBinary).toEqual([]);
    const next = random(1);
    for (const desc of types) {
      expectSame(desc, create(desc));
      for (let i = 0; i < 40; i++) expectSame(desc, fill(desc, next, 0));
    }
  });

  it("writes what toBinary writes, for every kind of field, with edge values", () => {
    const every = everyKind.getMessage("kinds.Every");
    if (every === undefined) throw new Error("kinds.Every missing");
    const next = random(2);
    expect(encodesDirectly(every)).toBe(true);
    expectSame(every, create(every));
    for (let i = 0; i < 500; i++) expectSame(every, fill(every, next, 0));
  });

  it("takes each edge value in each field alone (lengths of 127/128 bytes, 10-byte negatives)", () => {
    const every = everyKind.getMessage("kinds.Every");
    if (every === undefined) throw new Error("kinds.Every missing");
    for (const field of every.fields) {
      if (field.fieldKind !== "scalar" && field.fieldKind !== "list") continue;
      const scalar = field.scalar;
      if (scalar === undefined) continue;
      for (const value of edgeValues[scalar]) {
        const message = create(every) as unknown as Record<string, unknown>;
        const set = field.fieldKind === "list" ? [value, value] : value;
        if (field.oneof) message[field.oneof.localName] = { case: field.localName, value: set };
        else message[field.localName] = set;
        expectSame(every, message);
      }
    }
  });

  it("nests messages whose length needs more than one byte, and messages inside those", () => {
    const every = everyKind.getMessage("kinds.Every");
    if (every === undefined) throw new Error("kinds.Every missing");
    const leaf = create(every, { sString: "z".repeat(200), rInt32: [-1, -2, -3] });
    const middle = create(every, { child: leaf, children: [leaf, create(every), leaf] });
    const top = create(every, { child: middle, sBool: true, rString: ["a".repeat(20_000)] });
    expectSame(every, top);
  });

  it("fails as toBinary fails on values it cannot encode", () => {
    const every = everyKind.getMessage("kinds.Every");
    if (every === undefined) throw new Error("kinds.Every missing");
    const bad: [string, unknown][] = [
      ["sInt32", 2 ** 31],
      ["sInt32", 1.5],
      ["sUint32", -1],
      ["sFloat", 1e39],
      ["sString", 5],
      ["sInt64", 2n ** 63n],
      ["sUint64", -1n],
      ["rInt32", [1, "x"]],
      ["rString", "not a list"],
      ["child", 7],
    ];
    for (const [name, value] of bad) {
      const message = create(every) as unknown as Record<string, unknown>;
      message[name] = value;
      expectSame(every, message);
    }
    // Values toBinary converts (64-bit integers as numbers or strings) come out the same too.
    for (const [name, value] of [
      ["sInt64", 5],
      ["sInt64", "-7"],
      ["sUint64", "18446744073709551615"],
      ["sInt32", "12"],
    ] as const) {
      const message = create(every) as unknown as Record<string, unknown>;
      message[name] = value;
      expectSame(every, message);
    }
  });

  it("leaves types with wrappers as plain values, and maps, to toBinary", () => {
    const unboxed = everyKind.getMessage("kinds.Unboxed");
    const withMap = everyKind.getMessage("kinds.WithMap");
    if (unboxed === undefined || withMap === undefined) throw new Error("kinds missing");
    expect(encodesDirectly(unboxed)).toBe(false);
    expect(encodesDirectly(withMap)).toBe(false);
    expectSame(unboxed, create(unboxed, { name: "wrapped" }));
    expectSame(unboxed, create(unboxed));
    expectSame(withMap, create(withMap, { labels: { b: "2", a: "1" } }));
  });
});

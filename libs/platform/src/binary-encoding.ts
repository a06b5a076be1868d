/**
 * Protobuf binary encoding for the direct gRPC path, byte for byte what
 * protobuf-es's `toBinary` writes, at a fraction of its cost.
 *
 * `toBinary` is reflective: per message it builds a reflection wrapper, asks
 * every field whether it is set through it, and writes into a chunked writer
 * that is joined at the end, with a TextEncoder call per string. On a small
 * unary answer that was the largest cost of a call this side of node:http2
 * (15% of the server's CPU). Here each message type is turned once into a
 * plan (its fields in number order, each with its tag bytes and a writer for
 * its kind), and a message is written in one pass into one reusable buffer,
 * with the gRPC envelope's five bytes kept free in front.
 *
 * Anything unusual goes to `toBinary` instead, so the bytes, and the errors,
 * stay protobuf-es's own:
 * - per type, features this file does not implement: map fields, groups
 *   (delimited encoding), proto2 required fields, and the wrapper and Struct
 *   types that protobuf-es represents as plain values in fields;
 * - per message, any value `toBinary` would convert or refuse: a 64-bit
 *   integer that is not a bigint in range, an int32 out of range, a string
 *   that is not a string, and so on.
 * test/binary-encoding.test.ts compares both on every Meridian message and
 * on a type with every scalar kind, list and oneof, with edge values.
 */
import { type DescField, type DescMessage, ScalarType, toBinary } from "@bufbuild/protobuf";

/** Encodes `message` as `toBinary(desc, message)` does, into a new buffer with `headroom` unused bytes in front. */
export function encodeBinary(desc: DescMessage, message: object, headroom = 0): Buffer {
  const plan = planFor(desc);
  if (plan !== undefined) {
    out.pos = headroom;
    if (writeMessage(plan, message as Fields)) {
      const encoded = Buffer.allocUnsafe(out.pos);
      out.buf.copy(encoded, headroom, headroom, out.pos);
      return encoded;
    }
  }
  const bytes = toBinary(desc, message as never);
  const encoded = Buffer.allocUnsafe(headroom + bytes.byteLength);
  encoded.set(bytes, headroom);
  return encoded;
}

/** True when `desc` is written here, false when every message of it goes to toBinary. */
export function encodesDirectly(desc: DescMessage): boolean {
  return planFor(desc) !== undefined;
}

type Fields = Record<string, unknown> & {
  $unknown?: { no: number; wireType: number; data: Uint8Array }[];
};

/** The reusable output buffer: encoding is synchronous, so one serves every call. */
const out = { buf: Buffer.allocUnsafe(64 * 1024), pos: 0 };

function ensure(bytes: number) {
  if (out.pos + bytes <= out.buf.length) return;
  const grown = Buffer.allocUnsafe(Math.max(out.buf.length * 2, out.pos + bytes));
  out.buf.copy(grown, 0, 0, out.pos);
  out.buf = grown;
}

// ── Plans ────────────────────────────────────────────────────────────────

/** Writes one field's value (its tag included); false: leave this message to toBinary. */
type FieldWriter = (value: unknown) => boolean;

interface FieldPlan {
  localName: string;
  /** Set for a member of a oneof: the oneof's property on the message. */
  oneof: string | undefined;
  /** True when the field is set; for oneof members, only called when the case matches. */
  isSet: (value: unknown, message: Fields) => boolean;
  write: FieldWriter;
}

interface MessagePlan {
  fields: FieldPlan[];
}

/** undefined: a type this file leaves to toBinary. */
const plans = new WeakMap<DescMessage, MessagePlan | null>();

function planFor(desc: DescMessage): MessagePlan | undefined {
  const known = plans.get(desc);
  if (known !== undefined) return known ?? undefined;
  // Recursive types: the plan exists (unfinished) before its fields are planned.
  const plan: MessagePlan = { fields: [] };
  plans.set(desc, plan);
  for (const field of [...desc.fields].sort((a, b) => a.number - b.number)) {
    const fieldPlan = planField(field);
    if (fieldPlan === undefined) {
      plans.set(desc, null);
      return undefined;
    }
    plan.fields.push(fieldPlan);
  }
  return plan;
}

/** Field presence as protobuf-es numbers it (google.protobuf.FeatureSet.FieldPresence). */
const IMPLICIT = 2;
const LEGACY_REQUIRED = 3;

/** Types protobuf-es represents as plain values in a singular field outside a oneof. */
const wrapperTypes = new Set([
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]);

/** protobuf-es represents a Struct as a JSON object everywhere but in google.protobuf.Value. */
const isJsonObject = (field: DescField & { message: DescMessage }) =>
  field.message.typeName === "google.protobuf.Struct" &&
  field.parent.typeName !== "google.protobuf.Value";

function planField(field: DescField): FieldPlan | undefined {
  if (field.presence === LEGACY_REQUIRED) return undefined;
  const { localName } = field;
  const oneof = field.oneof?.localName;
  const explicit = (value: unknown, message: Fields) =>
    value !== undefined && Object.hasOwn(message, localName);
  switch (field.fieldKind) {
    case "scalar": {
      const write = scalarWriter(field.scalar, field.number);
      if (write === undefined) return undefined;
      const isSet =
        oneof !== undefined
          ? always
          : field.presence === IMPLICIT
            ? zeroCheck(field.scalar)
            : explicit;
      return { localName, oneof, isSet, write };
    }
    case "enum": {
      const write = scalarWriter(ScalarType.INT32, field.number) as FieldWriter;
      const zero = field.enum.values[0]?.number;
      const isSet =
        oneof !== undefined
          ? always
          : field.presence === IMPLICIT
            ? (value: unknown) => value !== zero
            : explicit;
      return { localName, oneof, isSet, write };
    }
    case "message": {
      if (field.delimitedEncoding || isJsonObject(field)) return undefined;
      if (oneof === undefined && wrapperTypes.has(field.message.typeName)) return undefined;
      const write = messageWriter(field.message, field.number);
      if (write === undefined) return undefined;
      return { localName, oneof, isSet: oneof !== undefined ? always : explicit, write };
    }
    case "list": {
      // Anything but an array is left for the writer to refuse.
      const isSet = (value: unknown) => !Array.isArray(value) || value.length > 0;
      if (field.listKind === "message") {
        if (field.delimitedEncoding || isJsonObject(field)) return undefined;
        const item = messageWriter(field.message, field.number);
        if (item === undefined) return undefined;
        return { localName, oneof, isSet, write: eachOf(item) };
      }
      const scalar = field.listKind === "enum" ? ScalarType.INT32 : field.scalar;
      if (field.packed) {
        const value = scalarValueWriter(scalar);
        if (value === undefined) return undefined;
        return { localName, oneof, isSet, write: packed(field.number, value) };
      }
      const item = scalarWriter(scalar, field.number);
      if (item === undefined) return undefined;
      return { localName, oneof, isSet, write: eachOf(item) };
    }
    case "map":
      return undefined;
  }
}

const always = () => true;

/** Implicit presence: set unless the zero value (+0 only for floating point), as isScalarZeroValue. */
function zeroCheck(type: ScalarType): (value: unknown) => boolean {
  switch (type) {
    case ScalarType.BOOL:
      return (value) => value !== false;
    case ScalarType.STRING:
      return (value) => value !== "";
    case ScalarType.BYTES:
      return (value) => !(value instanceof Uint8Array && value.byteLength === 0);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return (value) => !Object.is(value, 0);
    default:
      // biome-ignore lint/suspicious/noDoubleEquals: protobuf-es's own loose check (0n, 0 and "0").
      return (value) => value != 0;
  }
}

function writeMessage(plan: MessagePlan, message: Fields): boolean {
  for (const field of plan.fields) {
    let value: unknown;
    if (field.oneof !== undefined) {
      const selected = message[field.oneof] as { case?: string; value?: unknown } | undefined;
      // toBinary throws on a missing oneof: let it.
      if (typeof selected !== "object" || selected === null) return false;
      if (selected.case !== field.localName) continue;
      value = selected.value;
    } else {
      value = message[field.localName];
      if (!field.isSet(value, message)) continue;
    }
    if (!field.write(value)) return false;
  }
  const unknown = message.$unknown;
  if (unknown !== undefined) {
    for (const { no, wireType, data } of unknown) {
      ensure(10 + data.byteLength);
      varint32(((no << 3) | wireType) >>> 0);
      out.buf.set(data, out.pos);
      out.pos += data.byteLength;
    }
  }
  return true;
}

function messageWriter(desc: DescMessage, number: number): FieldWriter | undefined {
  const tag = tagBytes(number, LENGTH_DELIMITED);
  if (planFor(desc) === undefined) return undefined;
  // Looked up when first used: a type that contains itself is still being
  // planned here, and may yet turn out to be one for toBinary.
  let plan: MessagePlan | undefined;
  return (value) => {
    plan ??= planFor(desc);
    if (plan === undefined || typeof value !== "object" || value === null) return false;
    const body = plan;
    writeTag(tag);
    return delimited(() => writeMessage(body, value as Fields));
  };
}

function eachOf(item: FieldWriter): FieldWriter {
  return (list) => {
    if (!Array.isArray(list)) return false;
    for (const value of list as unknown[]) if (!item(value)) return false;
    return true;
  };
}

function packed(number: number, value: ValueWriter): FieldWriter {
  const tag = tagBytes(number, LENGTH_DELIMITED);
  return (list) => {
    if (!Array.isArray(list)) return false;
    writeTag(tag);
    return delimited(() => {
      for (const item of list as unknown[]) if (!value(item)) return false;
      return true;
    });
  };
}

/**
 * Writes a length-delimited body: one byte is kept for its length, and the
 * body is moved along in the rare case its length needs more.
 */
function delimited(body: () => boolean): boolean {
  ensure(1);
  const lengthAt = out.pos++;
  if (!body()) return false;
  const length = out.pos - lengthAt - 1;
  if (length < 0x80) {
    out.buf[lengthAt] = length;
    return true;
  }
  const extra = varintSize(length) - 1;
  ensure(extra);
  out.buf.copyWithin(lengthAt + 1 + extra, lengthAt + 1, out.pos);
  const end = out.pos + extra;
  out.pos = lengthAt;
  varint32(length);
  out.pos = end;
  return true;
}

// ── Scalars ──────────────────────────────────────────────────────────────

const VARINT = 0;
const BIT64 = 1;
const LENGTH_DELIMITED = 2;
const BIT32 = 5;

type ValueWriter = (value: unknown) => boolean;

function scalarWriter(type: ScalarType, number: number): FieldWriter | undefined {
  const value = scalarValueWriter(type);
  if (value === undefined) return undefined;
  const tag = tagBytes(number, wireTypeOf(type));
  return (v) => {
    writeTag(tag);
    return value(v);
  };
}

function wireTypeOf(type: ScalarType): number {
  switch (type) {
    case ScalarType.BYTES:
    case ScalarType.STRING:
      return LENGTH_DELIMITED;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return BIT64;
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      return BIT32;
    default:
      return VARINT;
  }
}

const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;
const UINT32_MAX = 0xffffffff;
const FLOAT32_MAX = 3.4028234663852886e38;
const INT64_MAX = 0x7fffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;
const UINT64_MAX = 0xffffffffffffffffn;

const isInt32 = (v: unknown): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX;
const isUint32 = (v: unknown): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= UINT32_MAX;
const isInt64 = (v: unknown): v is bigint =>
  typeof v === "bigint" && v >= INT64_MIN && v <= INT64_MAX;
const isUint64 = (v: unknown): v is bigint => typeof v === "bigint" && v >= 0n && v <= UINT64_MAX;

const isFloat32 = (v: unknown): v is number =>
  typeof v === "number" && !(Number.isFinite(v) && Math.abs(v) > FLOAT32_MAX);
const isNumber = (v: unknown): v is number => typeof v === "number";
const isString = (v: unknown): v is string => typeof v === "string";
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const isAny = (_: unknown): _ is unknown => true;

/** A value writer: values `valid` refuses go to toBinary; the rest take at most `size` bytes. */
function checked<V>(valid: (v: unknown) => v is V, size: number, write: (v: V) => void) {
  return (v: unknown): boolean => {
    if (!valid(v)) return false;
    ensure(size);
    write(v);
    return true;
  };
}

/** A 64-bit integer (two's complement) as a varint. */
const bigVarint = (v: bigint) =>
  varint64(Number(BigInt.asIntN(32, v)), Number(BigInt.asIntN(32, v >> 32n)));

function scalarValueWriter(type: ScalarType): ValueWriter | undefined {
  switch (type) {
    case ScalarType.STRING:
      return checked(isString, 0, writeString);
    case ScalarType.BYTES:
      return checked(isBytes, 0, (v) => {
        ensure(5 + v.byteLength);
        varint32(v.byteLength);
        out.buf.set(v, out.pos);
        out.pos += v.byteLength;
      });
    case ScalarType.BOOL:
      return checked(isAny, 1, (v) => {
        out.buf[out.pos++] = v ? 1 : 0;
      });
    case ScalarType.INT32:
      // A negative int32 is sign-extended to ten bytes, as protobuf-es writes it.
      return checked(isInt32, 10, (v) => (v >= 0 ? varint32(v) : varint64(v, -1)));
    case ScalarType.UINT32:
      return checked(isUint32, 5, varint32);
    case ScalarType.SINT32:
      return checked(isInt32, 5, (v) => varint32(((v << 1) ^ (v >> 31)) >>> 0));
    case ScalarType.FIXED32:
      return checked(isUint32, 4, (v) => {
        out.pos = out.buf.writeUInt32LE(v, out.pos);
      });
    case ScalarType.SFIXED32:
      return checked(isInt32, 4, (v) => {
        out.pos = out.buf.writeInt32LE(v, out.pos);
      });
    case ScalarType.FLOAT:
      return checked(isFloat32, 4, (v) => {
        out.pos = out.buf.writeFloatLE(v, out.pos);
      });
    case ScalarType.DOUBLE:
      return checked(isNumber, 8, (v) => {
        out.pos = out.buf.writeDoubleLE(v, out.pos);
      });
    case ScalarType.INT64:
      return checked(isInt64, 10, bigVarint);
    case ScalarType.UINT64:
      return checked(isUint64, 10, bigVarint);
    case ScalarType.SINT64:
      return checked(isInt64, 10, (v) => bigVarint(BigInt.asUintN(64, (v << 1n) ^ (v >> 63n))));
    case ScalarType.FIXED64:
      return checked(isUint64, 8, (v) => {
        out.pos = out.buf.writeBigUInt64LE(v, out.pos);
      });
    case ScalarType.SFIXED64:
      return checked(isInt64, 8, (v) => {
        out.pos = out.buf.writeBigInt64LE(v, out.pos);
      });
    default:
      return undefined;
  }
}

/** Strings of up to 42 UTF-16 units take at most 126 bytes: their length fits the one byte kept. */
const SHORT_STRING = 42;

function writeString(value: string) {
  if (value.length <= SHORT_STRING) {
    ensure(1 + 3 * value.length);
    const lengthAt = out.pos;
    const written = out.buf.write(value, lengthAt + 1);
    out.buf[lengthAt] = written;
    out.pos = lengthAt + 1 + written;
    return;
  }
  const length = Buffer.byteLength(value);
  ensure(5 + length);
  varint32(length);
  out.pos += out.buf.write(value, out.pos);
}

/** A field's tag as the varint bytes it is written as. */
function tagBytes(number: number, wireType: number): Buffer {
  const bytes: number[] = [];
  let value = ((number << 3) | wireType) >>> 0;
  while (value > 0x7f) {
    bytes.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  bytes.push(value);
  return Buffer.from(bytes);
}

function writeTag(tag: Buffer) {
  ensure(tag.length);
  if (tag.length === 1) out.buf[out.pos++] = tag[0] as number;
  else {
    tag.copy(out.buf, out.pos);
    out.pos += tag.length;
  }
}

function varintSize(value: number): number {
  let size = 1;
  while (value > 0x7f) {
    value >>>= 7;
    size++;
  }
  return size;
}

/** An unsigned 32-bit varint; the caller has ensured room. */
function varint32(value: number) {
  const { buf } = out;
  let pos = out.pos;
  while (value > 0x7f) {
    buf[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[pos++] = value;
  out.pos = pos;
}

/** A 64-bit varint from its two's complement halves, as protobuf-es's varint64write. */
function varint64(lo: number, hi: number) {
  const { buf } = out;
  let pos = out.pos;
  for (let i = 0; i < 28; i += 7) {
    const shift = lo >>> i;
    const hasNext = !(shift >>> 7 === 0 && hi === 0);
    buf[pos++] = (hasNext ? shift | 0x80 : shift) & 0xff;
    if (!hasNext) {
      out.pos = pos;
      return;
    }
  }
  const splitBits = ((lo >>> 28) & 0x0f) | ((hi & 0x07) << 4);
  const hasMoreBits = !(hi >> 3 === 0);
  buf[pos++] = (hasMoreBits ? splitBits | 0x80 : splitBits) & 0xff;
  if (!hasMoreBits) {
    out.pos = pos;
    return;
  }
  for (let i = 3; i < 31; i += 7) {
    const shift = hi >>> i;
    const hasNext = !(shift >>> 7 === 0);
    buf[pos++] = (hasNext ? shift | 0x80 : shift) & 0xff;
    if (!hasNext) {
      out.pos = pos;
      return;
    }
  }
  buf[pos++] = (hi >>> 31) & 0x01;
  out.pos = pos;
}

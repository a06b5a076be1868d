import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../src/errors.js";
import {
  afterPagePosition,
  decodePageToken,
  encodePageToken,
  pagePosition,
  parsePageSize,
} from "../src/paging.js";

/** Runs `fn` expecting an InvalidArgumentError, and returns it. */
function invalidArgument(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return error as InvalidArgumentError;
  }
  throw new Error("expected an InvalidArgumentError");
}

const toBase64Url = (text: string) => Buffer.from(text, "utf8").toString("base64url");

describe("parsePageSize", () => {
  it("turns 0 (unset) into the default of 50", () => {
    expect(parsePageSize(0)).toBe(50);
  });

  it("accepts 1 through 1000 as they are", () => {
    expect(parsePageSize(1)).toBe(1);
    expect(parsePageSize(50)).toBe(50);
    expect(parsePageSize(999)).toBe(999);
    expect(parsePageSize(1000)).toBe(1000);
  });

  it.each([-1, -50, 1001, 2 ** 31 - 1])("rejects %d, naming page_size", (size) => {
    const error = invalidArgument(() => parsePageSize(size));
    expect(error.violations).toHaveLength(1);
    expect(error.violations[0]?.field).toBe("page_size");
    expect(error.violations[0]?.description).toContain(`got ${size}`);
    expect(error.message).toMatch(/^page_size: must be between 1 and 1000/);
  });

  it("names the field it is given", () => {
    const error = invalidArgument(() => parsePageSize(5000, "max_results"));
    expect(error.violations[0]?.field).toBe("max_results");
  });
});

describe("page tokens", () => {
  it("round-trip the position for the same filter", () => {
    const position = ["2026-11-21T14:00:00.000Z", "7f1c2f5e-0000-4000-8000-000000000001"];
    const token = encodePageToken(position, 'status = "ACTIVE"');
    expect(decodePageToken(token, 'status = "ACTIVE"')).toEqual(position);
  });

  it("round-trip positions with any characters, and an empty filter", () => {
    const position = ["ünïcødé ✓", "", 'quote " and \\ backslash', "a/b+c=d"];
    expect(decodePageToken(encodePageToken(position, ""), "")).toEqual(position);
    expect(decodePageToken(encodePageToken([], ""), "")).toEqual([]);
  });

  it("are URL-safe and opaque", () => {
    const token = encodePageToken(["???>>>~~~"], "name = 'x'");
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(token).not.toContain("name");
  });

  it("decode an empty token as the first page", () => {
    expect(decodePageToken("", "anything")).toBeUndefined();
  });

  it.each([
    ["garbage", "!!!not a token!!!"],
    ["base64 of text that is not JSON", toBase64Url("hello, world")],
    ["base64 of truncated JSON", toBase64Url('{"v":1,"p":["a"')],
    ["JSON null", toBase64Url("null")],
    ["a JSON number", toBase64Url("42")],
    ["a JSON string", toBase64Url('"v"')],
    ["a JSON array", toBase64Url('[1,["a"],""]')],
    ["an unknown version", toBase64Url('{"v":2,"p":["a"],"f":""}')],
    ["a version given as a string", toBase64Url('{"v":"1","p":["a"],"f":""}')],
    ["no position", toBase64Url('{"v":1,"f":""}')],
    ["a position that is not an array", toBase64Url('{"v":1,"p":"a","f":""}')],
    ["a position with a non-string part", toBase64Url('{"v":1,"p":["a",1],"f":""}')],
    ["no filter", toBase64Url('{"v":1,"p":["a"]}')],
  ])("reject %s", (_what, token) => {
    const error = invalidArgument(() => decodePageToken(token, ""));
    expect(error.violations).toEqual([
      {
        field: "page_token",
        description:
          "is not a page token from a previous response; omit it to start at the first page",
      },
    ]);
  });

  it("name the field they are given", () => {
    const error = invalidArgument(() => decodePageToken("nope", "", "next_token"));
    expect(error.violations[0]?.field).toBe("next_token");
  });

  it("refuse a token issued for a different filter", () => {
    const token = encodePageToken(["k1"], 'status = "ACTIVE"');
    const error = invalidArgument(() => decodePageToken(token, 'status = "DELETED"'));
    expect(error.violations).toHaveLength(1);
    expect(error.violations[0]?.field).toBe("page_token");
    expect(error.message).toContain("different filter");
    // The same token still works with its own filter.
    expect(decodePageToken(token, 'status = "ACTIVE"')).toEqual(["k1"]);
  });

  it("treat the empty filter as a filter like any other", () => {
    const unfiltered = encodePageToken(["k1"], "");
    expect(invalidArgument(() => decodePageToken(unfiltered, "x")).message).toContain(
      "different filter",
    );
    const filtered = encodePageToken(["k1"], "x");
    expect(invalidArgument(() => decodePageToken(filtered, "")).message).toContain(
      "different filter",
    );
  });
});

describe("page positions", () => {
  it("are an item's (create_time, id), and resume strictly after it in either order", () => {
    const createTime = timestampFromDate(new Date("2026-11-21T10:00:00.123Z"));
    const position = pagePosition({ createTime, id: "b" });
    expect(position).toEqual(["2026-11-21T10:00:00.123Z", "b"]);
    const at = new Date("2026-11-21T10:00:00.123Z");
    expect(afterPagePosition(position, "asc")).toEqual({
      OR: [{ createdAt: { gt: at } }, { createdAt: at, id: { gt: "b" } }],
    });
    expect(afterPagePosition(position, "desc")).toEqual({
      OR: [{ createdAt: { lt: at } }, { createdAt: at, id: { lt: "b" } }],
    });
    expect(afterPagePosition(undefined, "asc")).toEqual({});
  });
});

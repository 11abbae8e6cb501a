import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs script without types
import { generate, SchemaError } from "../../scripts/gen-types.mjs";

const doc = (root: unknown, defs: Record<string, unknown> = {}) => ({ ...(root as object), $defs: defs });

describe("the type generator", () => {
  it("turns tagged unions, references, nullables and enums into TypeScript", () => {
    const client = doc(
      {
        oneOf: [
          { type: "object", properties: { type: { type: "string", const: "ping" }, client_time: { type: "number" } }, required: ["type", "client_time"] },
          { type: "object", properties: { type: { type: "string", const: "bid" } }, $ref: "#/$defs/Bid", required: ["type"] },
        ],
      },
      {
        Bid: { description: "A bid.", type: "object", properties: { amount: { type: "integer" }, kind: { anyOf: [{ $ref: "#/$defs/Kind" }, { type: "null" }] } }, required: ["amount"] },
        Kind: { type: "string", enum: ["plain", "max"] },
      },
    );
    const out: string = generate([["c.json", "ClientMessage", client]]);
    expect(out).toContain('export type ClientMessage =\n  | {\n    type: "ping";\n    client_time: number;\n  }\n  | ({\n    type: "bid";\n  } & Bid);');
    expect(out).toContain("/** A bid. */\nexport interface Bid {\n  amount: number;\n  kind?: Kind | null;\n}");
    expect(out).toContain('export type Kind = "plain" | "max";');
  });

  it("refuses what it does not understand instead of guessing", () => {
    expect(() => generate([["x.json", "X", { type: "object", patternProperties: {} }]])).toThrow(SchemaError);
    expect(() => generate([["x.json", "X", { $ref: "https://elsewhere/x.json" }]])).toThrow(/unsupported \$ref/);
    expect(() =>
      generate([
        ["a.json", null, { $defs: { T: { type: "string" } } }],
        ["b.json", null, { $defs: { T: { type: "integer" } } }],
      ]),
    ).toThrow(/differs/);
  });
});

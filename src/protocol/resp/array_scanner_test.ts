import assert from "node:assert/strict";
import fc from "fast-check";
import { ArrayElementScanner } from "./array_scanner.ts";
import { encodeArray, encodeBulk } from "./encoder.ts";
import { arrayElementBounds } from "./reply_value.ts";
import { concatBytes } from "../bytes.ts";

const encoder = new TextEncoder();

/** MGET-like element: a bulk, a nil, or RESP3's null. */
const element = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((bytes) => encodeBulk(bytes)),
  fc.constant(encoder.encode("$-1\r\n")),
  fc.constant(encoder.encode("_\r\n")),
  fc.integer().map((n) => encoder.encode(`:${n}\r\n`)),
);

Deno.test("ArrayElementScanner reports each element once, when its last byte is in, at any cut", () => {
  fc.assert(
    fc.property(
      fc.array(element, { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.nat(16),
      (elements, cuts, offset) => {
        const reply = encodeArray(elements);
        const expected: number[] = [];
        assert.equal(arrayElementBounds(reply, expected), elements.length);
        // The reply at `offset` in its buffer; it arrives in chunks ending at the cuts.
        const data = concatBytes([new Uint8Array(offset), reply]);
        const ends = [...new Set(cuts.map((cut) => cut % (reply.length + 1)))].sort((a, b) =>
          a - b
        );
        const scanner = new ArrayElementScanner();
        const got: number[] = [];
        for (const end of [...ends, reply.length]) {
          const bounds: number[] = [];
          assert.ok(scanner.scan(data, offset, offset + end, bounds));
          for (let i = 0; i < bounds.length; i += 2) {
            assert.ok(bounds[i + 1] <= end, "an element is complete when reported");
          }
          got.push(...bounds);
        }
        assert.deepEqual(got, expected.slice(0, 2 * elements.length));
        assert.equal(scanner.seen, elements.length);
      },
    ),
  );
});

Deno.test("ArrayElementScanner refuses what is not an array of flat values", () => {
  for (const text of ["-ERR boom\r\n", "$3\r\nabc\r\n", "*1\r\n*1\r\n$1\r\na\r\n", "*x\r\n"]) {
    const reply = encoder.encode(text);
    assert.equal(new ArrayElementScanner().scan(reply, 0, reply.length, []), false, text);
  }
  // An incomplete header line is no refusal: more bytes may come.
  const partial = encoder.encode("*12");
  assert.equal(new ArrayElementScanner().scan(partial, 0, partial.length, []), true);
});

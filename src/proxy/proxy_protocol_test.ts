import assert from "node:assert/strict";
import { formatPeer, parseProxyHeader, type ProxyParse, V1_MAX } from "./proxy_protocol.ts";

const enc = new TextEncoder();
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function v2(command: number, family: number, body: number[]): Uint8Array {
  return new Uint8Array([
    ...SIG,
    0x20 | command,
    family,
    body.length >> 8,
    body.length & 0xff,
    ...body,
  ]);
}

function parse(bytes: Uint8Array | string): ProxyParse {
  return parseProxyHeader(typeof bytes === "string" ? enc.encode(bytes) : bytes);
}

Deno.test("v1 TCP4: the source address, and the header's length (the client's bytes follow)", () => {
  const text = "PROXY TCP4 192.0.2.7 127.0.0.1 51234 6379\r\n";
  assert.deepEqual(parse(text + "*1\r\n$4\r\nPING\r\n"), {
    kind: "header",
    length: text.length,
    source: { family: "tcp4", address: "192.0.2.7", port: 51234 },
  });
});

Deno.test("v1 TCP6: the source in canonical form", () => {
  const text = "PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 4000 6379\r\n";
  assert.deepEqual(parse(text), {
    kind: "header",
    length: text.length,
    source: { family: "tcp6", address: "2001:db8::1", port: 4000 },
  });
});

Deno.test("v1 UNKNOWN: a header without a client address (the connection's stands)", () => {
  assert.deepEqual(parse("PROXY UNKNOWN\r\n"), { kind: "header", length: 15, source: null });
  const long = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
  assert.deepEqual(parse(long), { kind: "header", length: long.length, source: null });
});

Deno.test("v1 arriving one byte at a time asks for more until the CRLF", () => {
  const bytes = enc.encode("PROXY TCP4 10.1.2.3 10.0.0.1 1 2\r\n");
  for (let n = 1; n < bytes.length; n++) {
    assert.deepEqual(parseProxyHeader(bytes, n), { kind: "more" }, `after ${n} bytes`);
  }
  assert.deepEqual(parseProxyHeader(bytes, bytes.length).kind, "header");
});

Deno.test("v1 malformed: errors, decided as early as the bytes allow", () => {
  for (
    const bad of [
      "GET / HTTP/1.1\r\n", // not a header at all
      "*1\r\n$4\r\nPING\r\n",
      "P", // agrees with "PROXY " so far: more is needed
      "PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
      "PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n",
      "PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
      "PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",
      "PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
      "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",
      "PROXY TCP6 1::2::3 ::1 1 2\r\n",
      "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
    ]
  ) {
    const result = parse(bad);
    if (bad === "P") assert.deepEqual(result, { kind: "more" });
    else assert.deepEqual(result.kind, "error", bad);
  }
  assert.deepEqual(parse("X").kind, "error"); // one byte is enough to refuse
  assert.deepEqual(parse("PROXY " + "9".repeat(V1_MAX)).kind, "error"); // no CRLF in 107 bytes
});

Deno.test("v2 PROXY over IPv4, with a TLV after the addresses", () => {
  const tlv = [0x04, 0x00, 0x01, 0x00]; // PP2_TYPE_NOOP, skipped
  const header = v2(1, 0x11, [203, 0, 113, 9, 127, 0, 0, 1, 0xc3, 0x50, 0x18, 0xeb, ...tlv]);
  const withRequest = new Uint8Array([...header, ...enc.encode("*1\r\n$4\r\nPING\r\n")]);
  assert.deepEqual(parseProxyHeader(withRequest), {
    kind: "header",
    length: header.length,
    source: { family: "tcp4", address: "203.0.113.9", port: 50000 },
  });
});

Deno.test("v2 PROXY over IPv6", () => {
  const src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42];
  const dst = [...new Array(15).fill(0), 1];
  const header = v2(1, 0x21, [...src, ...dst, 0x04, 0xd2, 0x18, 0xeb]);
  assert.deepEqual(parseProxyHeader(header), {
    kind: "header",
    length: header.length,
    source: { family: "tcp6", address: "2001:db8::42", port: 1234 },
  });
});

Deno.test("v2 LOCAL (a balancer's health check) and UNSPEC name no client", () => {
  assert.deepEqual(parseProxyHeader(v2(0, 0x00, [])), { kind: "header", length: 16, source: null });
  const local = v2(0, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]);
  assert.deepEqual(parseProxyHeader(local), { kind: "header", length: 28, source: null });
  assert.deepEqual(parseProxyHeader(v2(1, 0x00, [])), { kind: "header", length: 16, source: null });
});

Deno.test("v2 arriving in chunks asks for more until the whole address block is there", () => {
  const header = v2(1, 0x11, [10, 0, 0, 5, 10, 0, 0, 1, 0x30, 0x39, 0x18, 0xeb]);
  for (let n = 1; n < header.length; n++) {
    assert.deepEqual(parseProxyHeader(header, n), { kind: "more" }, `after ${n} bytes`);
  }
  assert.deepEqual(parseProxyHeader(header, header.length), {
    kind: "header",
    length: 28,
    source: { family: "tcp4", address: "10.0.0.5", port: 12345 },
  });
});

Deno.test("v2 malformed: signature, version, command, short address block", () => {
  const good = v2(1, 0x11, [10, 0, 0, 5, 10, 0, 0, 1, 0, 1, 0, 2]);
  const badSig = good.slice();
  badSig[7] = 0x52;
  assert.deepEqual(parseProxyHeader(badSig).kind, "error");
  const badVersion = good.slice();
  badVersion[12] = 0x11;
  assert.deepEqual(parseProxyHeader(badVersion).kind, "error");
  const badCommand = good.slice();
  badCommand[12] = 0x22;
  assert.deepEqual(parseProxyHeader(badCommand).kind, "error");
  assert.deepEqual(parseProxyHeader(v2(1, 0x11, [1, 2, 3, 4])).kind, "error");
  assert.deepEqual(parseProxyHeader(v2(1, 0x21, new Array(20).fill(0))).kind, "error");
  const huge = new Uint8Array([...SIG, 0x21, 0x11, 0xff, 0xff]);
  assert.deepEqual(parseProxyHeader(huge).kind, "error");
});

Deno.test("formatPeer brackets IPv6 hosts", () => {
  assert.deepEqual(formatPeer({ address: "10.0.0.1", port: 5 }), "10.0.0.1:5");
  assert.deepEqual(formatPeer({ address: "::1", port: 5 }), "[::1]:5");
});

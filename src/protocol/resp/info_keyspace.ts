/**
 * `INFO keyspace` over every node: each backend's `dbN:keys=..,expires=..,avg_ttl=..` lines
 * summed per database into one `# Keyspace` section, as one redis-server would write it.
 */
import { encodeBulk, encodeError, resp3Reply } from "./encoder.ts";

const decoder = new TextDecoder();
const BAD_REPLY = encodeError("ERR unexpected reply from backend");

/** Per database: every field summed, and avg_ttl's sum weighted by each node's expires. */
interface _Db {
  fields: Map<string, number>;
  weightedTtl: number;
}

/**
 * The merged `# Keyspace` section from the backends' `INFO keyspace` bulk replies (or RESP3
 * verbatim strings, "txt:" first: then the merged one is verbatim too): keys, expires (and
 * any other count) summed, avg_ttl the expires-weighted mean of the nodes'. `before`: Aster's
 * own sections INFO asked for too, which come first.
 */
export function mergeKeyspace(replies: readonly Uint8Array[], before = ""): Uint8Array {
  const dbs = new Map<string, _Db>();
  const verbatim = replies[0]?.[0] === 0x3d; /* "=" */
  for (const reply of replies) {
    if (reply[0] !== (verbatim ? 0x3d : 0x24 /* "$" */)) return BAD_REPLY;
    const skip = verbatim ? 4 : 0; // "txt:"
    const text = decoder.decode(
      reply.subarray(reply.indexOf(0x0a) + 1 + skip, reply.length - 2),
    );
    for (const line of text.split("\r\n")) {
      const colon = line.indexOf(":");
      if (!line.startsWith("db") || colon < 0) continue;
      const name = line.slice(0, colon);
      let db = dbs.get(name);
      if (db === undefined) {
        db = { fields: new Map(), weightedTtl: 0 };
        dbs.set(name, db);
      }
      const values = new Map<string, number>();
      for (const pair of line.slice(colon + 1).split(",")) {
        const [field, value] = pair.split("=");
        values.set(field, Number(value) || 0);
      }
      for (const [field, value] of values) {
        if (field === "avg_ttl") db.weightedTtl += value * (values.get("expires") ?? 0);
        db.fields.set(field, (db.fields.get(field) ?? 0) + (field === "avg_ttl" ? 0 : value));
      }
    }
  }
  const lines = ["# Keyspace"];
  const names = [...dbs.keys()].sort((a, b) => Number(a.slice(2)) - Number(b.slice(2)));
  for (const name of names) {
    const db = dbs.get(name)!;
    const expires = db.fields.get("expires") ?? 0;
    const fields = [...db.fields].map(([field, value]) =>
      field === "avg_ttl"
        ? `avg_ttl=${expires > 0 ? Math.round(db.weightedTtl / expires) : 0}`
        : `${field}=${value}`
    );
    lines.push(`${name}:${fields.join(",")}`);
  }
  const merged = encodeBulk((before === "" ? "" : before + "\r\n") + lines.join("\r\n") + "\r\n");
  return verbatim ? resp3Reply(merged, true) : merged;
}

/**
 * CLIENT LIST, CLIENT INFO and CLIENT KILL over Aster's own clients of one cluster in this
 * worker: the lines in redis-server's format, with Aster's ids and addresses.
 */
import { encodeBulk, encodeError, encodeInteger, OK_REPLY } from "../protocol/resp/encoder.ts";
import { parseLongLong } from "../protocol/resp/bytes.ts";
import type { ClientState } from "./redis_local.ts";

const decoder = new TextDecoder();

/** What CLIENT LIST knows of one client (a session). */
export interface ListedClient {
  readonly id: number;
  /** `host:port`, "" when unknown. */
  readonly peer: string;
  /** When it connected and last sent bytes (ms, the same clock as `now`). */
  readonly createdAt: number;
  readonly lastActiveAt: number;
  /** Its CLIENT state (name, library), null before its first CLIENT command. */
  readonly connState: ClientState | null;
  /** True once closed (it leaves the listener's set a little later). */
  readonly closed: boolean;
  close(): void;
}

/**
 * One client's line as redis-server 7.2 writes it; what Aster does not track is 0 or empty.
 * `database` is the one every backend connection selected (`database`).
 */
export function clientLine(
  client: ListedClient,
  now: number,
  cmd = "client|list",
  database = 0,
): string {
  const state = client.connState;
  const name = state?.name ? decoder.decode(state.name) : "";
  const sets = state?.subs?.sets;
  // In redis-server's order: P (subscribed), then e and T.
  const flags = (_isPubsub(client) ? "P" : "") + (state?.noEvict ? "e" : "") +
    (state?.noTouch ? "T" : "");
  const fields: [string, string | number][] = [
    ["id", client.id],
    ["addr", client.peer],
    ["laddr", ""],
    ["fd", -1],
    ["name", name],
    ["age", Math.max(0, Math.floor((now - client.createdAt) / 1000))],
    ["idle", Math.max(0, Math.floor((now - client.lastActiveAt) / 1000))],
    ["flags", flags === "" ? "N" : flags],
    ["db", database],
    ["sub", sets?.[0].size ?? 0],
    ["psub", sets?.[1].size ?? 0],
    ["ssub", sets?.[2].size ?? 0],
    ["multi", -1],
    ["watch", 0],
    ["qbuf", 0],
    ["qbuf-free", 0],
    ["argv-mem", 0],
    ["multi-mem", 0],
    ["rbs", 0],
    ["rbp", 0],
    ["obl", 0],
    ["oll", 0],
    ["omem", 0],
    ["tot-mem", 0],
    ["events", "r"],
    ["cmd", cmd],
    ["user", "default"],
    ["redir", -1],
    ["resp", state?.resp ?? 2],
    ["lib-name", state?.libName ?? ""],
    ["lib-ver", state?.libVer ?? ""],
  ];
  return fields.map(([key, value]) => `${key}=${value}`).join(" ");
}

/**
 * CLIENT LIST [TYPE type | ID id ...]: a line per client, each ending in "\n", as redis-server
 * 7.0 (with ID, one line per ID given that names a client, in their order).
 */
export function clientListReply(
  argv: readonly Uint8Array[],
  clients: Iterable<ListedClient>,
  now: number,
  database = 0,
): Uint8Array {
  const option = argv.length > 2 ? decoder.decode(argv[2]).toLowerCase() : "";
  let listed: ListedClient[];
  if (argv.length === 2) listed = [...clients];
  else if (argv.length === 4 && option === "type") {
    const type = decoder.decode(argv[3]);
    const match = _TYPES.get(type.toLowerCase());
    if (match === undefined) return encodeError(`ERR Unknown client type '${type}'`);
    listed = [...clients].filter(match);
  } else if (argv.length > 3 && option === "id") {
    const ids: number[] = [];
    for (const arg of argv.slice(3)) {
      const id = parseLongLong(arg);
      if (id === null) return encodeError("ERR Invalid client ID");
      ids.push(Number(id)); // no client has an id past 2^53: no match either way
    }
    const byId = new Map<number, ListedClient>();
    for (const client of clients) byId.set(client.id, client);
    listed = ids.flatMap((id) => byId.get(id) ?? []);
  } else return encodeError("ERR syntax error");
  let text = "";
  for (const client of listed) {
    if (!client.closed) text += clientLine(client, now, "client|list", database) + "\n";
  }
  return encodeBulk(text);
}

/** CLIENT LIST TYPE's types (Redis's names): which of Aster's clients each one lists. */
const _TYPES = new Map<string, (client: ListedClient) => boolean>([
  ["normal", (client) => !_isPubsub(client)],
  ["pubsub", _isPubsub],
  ["master", () => false],
  ["replica", () => false],
  ["slave", () => false],
]);

/** Subscribed to something (redis-server's CLIENT_PUBSUB flag). */
function _isPubsub(client: ListedClient): boolean {
  const subs = client.connState?.subs;
  return subs !== undefined && subs.total > 0;
}

/**
 * CLIENT KILL addr | ID id | ADDR addr [...]: closes Aster's own matching clients (never
 * backend connections). The old form answers OK or an error, the new one a count.
 */
export function clientKillReply(
  argv: readonly Uint8Array[],
  clients: Iterable<ListedClient>,
): Uint8Array {
  const args = argv.slice(2).map((arg) => decoder.decode(arg));
  if (args.length === 1) {
    const killed = _kill(clients, (client) => client.peer === args[0]);
    return killed > 0 ? OK_REPLY : encodeError("ERR No such client");
  }
  if (args.length === 0 || args.length % 2 !== 0) return encodeError("ERR syntax error");
  let id: number | null = null;
  let addr: string | null = null;
  for (let i = 0; i < args.length; i += 2) {
    const option = args[i].toLowerCase();
    if (option === "id") {
      id = Number(args[i + 1]);
      if (!Number.isSafeInteger(id) || id <= 0) {
        return encodeError("ERR client-id should be greater than 0");
      }
    } else if (option === "addr") addr = args[i + 1];
    else if (option === "skipme" || option === "maxage" || option === "laddr") continue;
    else return encodeError(`ERR syntax error (aster kills its clients by ID or ADDR only)`);
  }
  return encodeInteger(
    _kill(
      clients,
      (client) => (id === null || client.id === id) && (addr === null || client.peer === addr),
    ),
  );
}

function _kill(clients: Iterable<ListedClient>, match: (client: ListedClient) => boolean): number {
  // Matched first, closed after: closing removes a client from the set being iterated.
  const matched = [...clients].filter((client) => !client.closed && match(client));
  for (const client of matched) client.close();
  return matched.length;
}

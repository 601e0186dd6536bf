/** Commands Aster answers itself in Redis modes: PING, ECHO, SELECT, some of CLIENT (COMMAND is forwarded). */
import type { ClientSubscriptions } from "../protocol/resp/pubsub.ts";
import {
  encodeBulk,
  encodeError,
  encodeInteger,
  NULL_BULK_REPLY,
  OK_REPLY,
  PONG_REPLY,
} from "../protocol/resp/encoder.ts";
import type { CommandSpec } from "../protocol/resp/commands.ts";
import { parseLongLong } from "../protocol/resp/bytes.ts";

const decoder = new TextDecoder();

/** The reply to a local command (QUIT is handled by the caller: it closes the client). */
export function localReply(spec: CommandSpec, argv: readonly Uint8Array[]): Uint8Array {
  switch (spec.name) {
    case "ping":
      if (argv.length > 2) return _wrongArity("ping");
      return argv.length === 2 ? encodeBulk(argv[1]) : PONG_REPLY;
    case "echo":
      return encodeBulk(argv[1]);
    case "select":
      return selectReply(argv[1], 0);
    default:
      return encodeError(`ERR command '${spec.name}' has no local answer`);
  }
}

/** Whether SELECT's argument names `database` (Redis's integer syntax), or why not. */
export function selectsDatabase(
  arg: Uint8Array,
  database: number,
): boolean | "nan" | "range" | "negative" {
  // Redis reads it as an int (getIntFromObjectOrReply): its integer syntax ("-0" is none),
  // then 32 bits.
  const value = parseLongLong(arg);
  if (value === null) return "nan";
  if (value > 2147483647n || value < -2147483648n) return "range";
  if (value < 0n) return "negative"; // no database anywhere: Redis's own refusal
  return value === BigInt(database);
}

/**
 * SELECT as Aster answers it: OK for the database every backend connection has selected
 * (`database`, 0 in redis_cluster), refused for any other (a connection is shared by many
 * clients, and goes back to a pool).
 */
export function selectReply(arg: Uint8Array, database: number): Uint8Array {
  const selects = selectsDatabase(arg, database);
  if (selects === "nan") return encodeError("ERR value is not an integer or out of range");
  if (selects === "range") {
    return encodeError("ERR value is out of range, value must between -2147483648 and 2147483647");
  }
  if (selects === "negative") return encodeError("ERR DB index is out of range");
  return selects
    ? OK_REPLY
    : encodeError(`ERR DB index is out of range (aster serves database ${database} only)`);
}

/** Redis's wording for a bad argument count. */
function _wrongArity(name: string): Uint8Array {
  return encodeError(`ERR wrong number of arguments for '${name}' command`);
}

/** What the CLIENT subcommands keep per connection (CLIENT LIST shows it). */
export interface ClientState {
  id: number;
  name: Uint8Array | null;
  /** CLIENT SETINFO's. */
  libName?: string;
  libVer?: string;
  /** CLIENT NO-EVICT / NO-TOUCH: recorded (shown in CLIENT LIST's flags), not forwarded. */
  noEvict?: boolean;
  noTouch?: boolean;
  /** The protocol HELLO chose (CLIENT LIST's `resp`); absent: 2. */
  resp?: number;
  /** Its subscriptions (CLIENT LIST's `sub`, `psub`, `ssub`, flag `P`), once it subscribed. */
  subs?: ClientSubscriptions;
}

const ON_OFF_ERROR = encodeError("ERR syntax error");

/**
 * The CLIENT subcommands client libraries send on connect, answered as Redis 7.2 does:
 * SETINFO (ioredis 6, node-redis 6), SETNAME/GETNAME (a `name`/`connectionName` option)
 * and ID; NO-EVICT and NO-TOUCH recorded; TRACKING, PAUSE and UNPAUSE refused. Returns
 * null for the others (LIST, INFO, KILL and REPLY are the planner's; the rest refused).
 */
export function clientReply(argv: readonly Uint8Array[], state: ClientState): Uint8Array | null {
  const sub = decoder.decode(argv[1]).toLowerCase();
  switch (sub) {
    case "setinfo": {
      if (argv.length !== 4) return _wrongArity("client|setinfo");
      const attr = decoder.decode(argv[2]);
      const lower = attr.toLowerCase();
      if (lower !== "lib-name" && lower !== "lib-ver") {
        return encodeError(`ERR Unrecognized option '${attr}'`);
      }
      if (!_validAttr(argv[3])) return _badAttr(attr);
      if (lower === "lib-name") state.libName = decoder.decode(argv[3]);
      else state.libVer = decoder.decode(argv[3]);
      return OK_REPLY;
    }
    case "no-evict":
    case "no-touch": {
      if (argv.length !== 3) return _wrongArity(`client|${sub}`);
      const value = decoder.decode(argv[2]).toLowerCase();
      if (value !== "on" && value !== "off") return ON_OFF_ERROR;
      if (sub === "no-evict") state.noEvict = value === "on";
      else state.noTouch = value === "on";
      return OK_REPLY;
    }
    case "tracking":
    case "caching":
    case "getredir":
    case "trackinginfo":
      return encodeError(
        `ERR CLIENT ${sub.toUpperCase()} is not supported by aster: client-side caching ` +
          "(tracking) is not supported yet (see docs/commands.md#answered-by-aster)",
      );
    case "pause":
    case "unpause":
      return encodeError(
        `ERR CLIENT ${sub.toUpperCase()} is not supported by aster: it would pause every ` +
          "backend's clients, not Aster's (see docs/commands.md#answered-by-aster)",
      );
    case "setname":
      if (argv.length !== 3) return _wrongArity("client|setname");
      if (!_validAttr(argv[2])) return _badAttr("Client names");
      state.name = argv[2].length === 0 ? null : argv[2].slice();
      return OK_REPLY;
    case "getname":
      if (argv.length !== 2) return _wrongArity("client|getname");
      return state.name === null ? NULL_BULK_REPLY : encodeBulk(state.name);
    case "id":
      if (argv.length !== 2) return _wrongArity("client|id");
      return encodeInteger(state.id);
    default:
      return null;
  }
}

/** Redis's rule for client names and library info: printable ASCII, no spaces. */
function _validAttr(value: Uint8Array): boolean {
  for (const byte of value) if (byte < 0x21 || byte > 0x7e) return false;
  return true;
}

function _badAttr(what: string): Uint8Array {
  return encodeError(`ERR ${what} cannot contain spaces, newlines or special characters.`);
}

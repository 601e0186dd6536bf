/** Commands Aster answers itself in Redis modes: PING, ECHO, SELECT, COMMAND. */
import {
  encodeArray,
  encodeBulk,
  encodeError,
  encodeInteger,
  encodeSimple,
  OK_REPLY,
  PONG_REPLY,
} from "../protocol/resp/encoder.ts";
import { COMMANDS, type CommandSpec, lookupCommand } from "../protocol/resp/commands.ts";

const decoder = new TextDecoder();
const NULL_ARRAY = new TextEncoder().encode("*-1\r\n");

/** The reply to a local command (QUIT is handled by the caller: it closes the client). */
export function localReply(spec: CommandSpec, argv: readonly Uint8Array[]): Uint8Array {
  switch (spec.name) {
    case "ping":
      if (argv.length > 2) return _wrongArity("ping");
      return argv.length === 2 ? encodeBulk(argv[1]) : PONG_REPLY;
    case "echo":
      return encodeBulk(argv[1]);
    case "select": {
      const text = decoder.decode(argv[1]);
      if (!/^-?(0|[1-9][0-9]{0,17})$/.test(text)) {
        return encodeError("ERR value is not an integer or out of range");
      }
      return text === "0"
        ? OK_REPLY
        : encodeError("ERR DB index is out of range (aster serves database 0 only)");
    }
    case "command":
      return _command(argv);
    default:
      return encodeError(`ERR command '${spec.name}' has no local answer`);
  }
}

/** Redis's wording for a bad argument count. */
function _wrongArity(name: string): Uint8Array {
  return encodeError(`ERR wrong number of arguments for '${name}' command`);
}

function _command(argv: readonly Uint8Array[]): Uint8Array {
  if (argv.length === 1) return encodeArray(COMMANDS.map(_commandInfo));
  const sub = decoder.decode(argv[1]).toLowerCase();
  switch (sub) {
    case "count":
      return argv.length === 2 ? encodeInteger(COMMANDS.length) : _wrongArity("command|count");
    case "info": {
      const names = argv.length > 2
        ? argv.slice(2)
        : COMMANDS.map((c) => new TextEncoder().encode(c.name));
      return encodeArray(names.map((name) => {
        const spec = lookupCommand(name);
        return spec ? _commandInfo(spec) : NULL_ARRAY;
      }));
    }
    case "list":
      return encodeArray(COMMANDS.map((c) => encodeBulk(c.name)));
    case "docs":
      // Clients (redis-cli 7) ask for docs at start; an empty map is a valid answer.
      return encodeArray([]);
    default:
      return encodeError(`ERR unknown subcommand '${sub}'. Try COMMAND HELP.`);
  }
}

/** COMMAND INFO's entry for a command: name, arity, flags, first key, last key, step. */
function _commandInfo(spec: CommandSpec): Uint8Array {
  const flags = [spec.readonly ? "readonly" : "write"];
  return encodeArray([
    encodeBulk(spec.name),
    encodeInteger(spec.arity),
    encodeArray(flags.map(encodeSimple)),
    encodeInteger(spec.firstKey),
    encodeInteger(spec.lastKey),
    encodeInteger(spec.keyStep),
  ]);
}

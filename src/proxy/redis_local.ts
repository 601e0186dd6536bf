/** Commands Aster answers itself in Redis modes: PING, ECHO, SELECT (COMMAND is forwarded). */
import { encodeBulk, encodeError, OK_REPLY, PONG_REPLY } from "../protocol/resp/encoder.ts";
import type { CommandSpec } from "../protocol/resp/commands.ts";

const decoder = new TextDecoder();

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
    default:
      return encodeError(`ERR command '${spec.name}' has no local answer`);
  }
}

/** Redis's wording for a bad argument count. */
function _wrongArity(name: string): Uint8Array {
  return encodeError(`ERR wrong number of arguments for '${name}' command`);
}

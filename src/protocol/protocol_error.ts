/** Malformed input from a peer: the framing of that connection is lost. */
export class ProtocolError extends Error {
  /** Close without an error reply (as redis-server closes a client past its query buffer limit). */
  readonly silent: boolean;

  constructor(message: string, options: { silent?: boolean } = {}) {
    super(message);
    this.name = "ProtocolError";
    this.silent = options.silent ?? false;
  }
}

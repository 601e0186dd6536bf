/** Malformed input from a peer: the framing of that connection is lost. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** Where a backend reply goes: implemented by the proxy's pending replies and by health pings. */
export interface ReplySink {
  /**
   * The complete reply: a view into the connection's buffer, valid only during the call;
   * unless `owned`: then the connection gave the buffer up and the sink may keep the bytes.
   */
  onReply(reply: Uint8Array, owned?: boolean): void;
  /** The request failed (connection lost, timeout, node down): no reply will come. */
  onError(message: string): void;
}

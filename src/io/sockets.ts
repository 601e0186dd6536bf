/**
 * The socket API of this isolate: the runtime's own sockets, or raw sockets through FFI
 * (`io = "ffi"`) once the data plane chose them. Each worker is its own isolate and serves
 * one cluster, so the choice is made once per isolate, at start; sessions and backend
 * connections then call `sockets()` when they open a socket, never per read or write.
 */
import { runtime } from "../runtime/runtime.ts";
import type { SocketApi, TlsApi } from "../runtime/sockets.ts";

export type {
  ListenAddress,
  ProxyConn,
  ProxyListener,
  SocketApi,
  TlsClientOptions,
  TlsListener,
  TlsServerCredentials,
} from "../runtime/sockets.ts";

let current: SocketApi = runtime.sockets;

/** The socket API of this isolate. */
export function sockets(): SocketApi {
  return current;
}

/** Chooses the socket API of this isolate (a worker does it once, before it listens). */
export function useSockets(api: SocketApi): void {
  current = api;
}

/** The runtime's TLS sockets: TLS never runs on raw sockets, whatever `io` picked. */
export function tlsSockets(): TlsApi {
  return runtime.tls;
}

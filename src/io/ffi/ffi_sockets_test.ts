/**
 * The raw-socket layer (`io = "ffi"`) in this process, against the kernel: epoll events of
 * reused descriptors, connect outcomes, failed epoll calls. Loading it needs --allow-ffi,
 * which `deno task test` does not grant: then one test runs this file again with it.
 */
import assert from "node:assert/strict";

const FFI = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
const decoder = new TextDecoder();

if (!FFI) {
  Deno.test("raw-socket layer tests (this file again, with --allow-ffi)", async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "--allow-ffi",
        "--allow-net",
        "--allow-env",
        "--allow-read",
        import.meta.filename!,
      ],
      stdin: "null",
    }).output();
    assert.equal(
      output.code,
      0,
      decoder.decode(output.stdout) + decoder.decode(output.stderr),
    );
  });
}

/** A test that needs FFI (ignored here without it: the test above runs it). */
function ffiTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !FFI, fn });
}

async function _load() {
  const [sockets, libc] = await Promise.all([import("./ffi_sockets.ts"), import("./libc.ts")]);
  return { ...sockets, ...libc };
}

type Lib = Awaited<ReturnType<typeof _load>>;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A raw client socket connected to `listener`, and the peer Deno accepted. */
async function _rawClient(lib: Lib, listener: Deno.TcpListener) {
  const fd = lib.c.socket(lib.AF_INET, lib.SOCK_STREAM | lib.SOCK_NONBLOCK | lib.SOCK_CLOEXEC, 0);
  assert.ok(fd >= 0);
  const addr = lib.ipv4Address("127.0.0.1", listener.addr.port)!;
  lib.c.connect(fd, addr, addr.length); // in progress: done once Deno accepts it
  const peer = await listener.accept();
  return { fd, peer };
}

/** A new socket given descriptor number `fd` (the lowest free one is taken). */
function _socketNumbered(lib: Lib, fd: number): number {
  const extra: number[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      const next = lib.c.socket(lib.AF_INET, lib.SOCK_STREAM | lib.SOCK_CLOEXEC, 0);
      if (next === fd) return next;
      extra.push(next);
    }
    throw new Error(`descriptor ${fd} was not given again`);
  } finally {
    for (const other of extra) lib.c.close(other);
  }
}

ffiTest(
  "an event queued for a closed descriptor does not reach the new socket given its number",
  async () => {
    const lib = await _load();
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const x = await _rawClient(lib, listener);
    const y = await _rawClient(lib, listener);
    await x.peer.write(new Uint8Array([1]));
    await y.peer.write(new Uint8Array([2]));
    const loop = new lib.EpollLoop(null);
    // Both are readable already: added in this order, they come in one batch, y then x.
    let reused = -1;
    let inBatch = false;
    const stale: number[] = [];
    loop.watch(y.fd, () => {
      if (reused >= 0) return;
      // y's handler closes x, and a new socket takes x's number before x's event is read.
      loop.unwatch(x.fd);
      loop.closeFd(x.fd);
      reused = _socketNumbered(lib, x.fd);
      inBatch = true;
      queueMicrotask(() => inBatch = false); // runs once this batch is dispatched
      loop.watch(reused, (flags) => {
        if (inBatch) stale.push(flags);
      });
    });
    let xEvents = 0;
    loop.watch(x.fd, () => xEvents++);
    for (let i = 0; i < 100 && reused < 0; i++) await delay(10);
    await delay(50);
    assert.equal(reused, x.fd, "the handler of y did not run");
    assert.equal(xEvents, 0, "x was dispatched before y: the batch was not staged");
    assert.deepEqual(stale, [], "the new socket got the closed one's event");
    for (const fd of [y.fd, reused]) {
      loop.unwatch(fd);
      loop.closeFd(fd);
    }
    x.peer.close();
    y.peer.close();
  },
);

/**
 * The raw-socket layer (`io = "ffi"`) in this process, against the kernel: epoll events of
 * reused descriptors, connect outcomes, failed epoll calls. Loading it needs --allow-ffi,
 * which `deno task test` does not grant: then one test runs this file again with it.
 */
import assert from "node:assert/strict";
import type { ProxyConn } from "../../sockets.ts";

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
        "--allow-run",
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

/** A port nothing listens on (free a moment ago). */
function _freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}

ffiTest(
  "errors name the OS error as Deno's own do: refused, reset, timed out, unreachable",
  async () => {
    const lib = await _load();
    const port = _freePort();
    const denoError = await Deno.connect({ hostname: "127.0.0.1", port }).then(
      () => assert.fail("connected"),
      (err: Error) => err,
    );
    const rawError = await lib.ffiSockets().connect({ hostname: "127.0.0.1", port }).then(
      () => assert.fail("connected"),
      (err: Error) => err,
    );
    assert.ok(rawError instanceof Deno.errors.ConnectionRefused, String(rawError));
    assert.equal(rawError.message, denoError.message);
    assert.equal(rawError.message, "Connection refused (os error 111)");
    const reset = lib.osError(lib.ECONNRESET);
    assert.ok(reset instanceof Deno.errors.ConnectionReset);
    assert.equal(reset.message, "Connection reset by peer (os error 104)");
    const timedOut = lib.osError(lib.ETIMEDOUT, "connect failed: ");
    assert.ok(timedOut instanceof Deno.errors.TimedOut);
    assert.equal(timedOut.message, "connect failed: Connection timed out (os error 110)");
    assert.equal(lib.osError(lib.EHOSTUNREACH).message, "No route to host (os error 113)");
    assert.ok(lib.osError(lib.EPIPE) instanceof Deno.errors.BrokenPipe);
  },
);

ffiTest(
  "a connect still in its handshake is not taken for done on an event without EPOLLOUT",
  async () => {
    const lib = await _load();
    const { FaultInjector } = await import("./faults.ts");
    const injector = new FaultInjector(lib.c, { eagain: 0, eintr: 0, short: 0, reset: 0 }, 1);
    const previous = lib.useLibc(injector.libc);
    const fds: number[] = [];
    try {
      // A listener with a full accept queue: the kernel drops further SYNs, so a new connect
      // stays in its handshake (SYN_SENT) until the queue has room.
      const port = _freePort();
      const listener = lib.c.socket(
        lib.AF_INET,
        lib.SOCK_STREAM | lib.SOCK_NONBLOCK | lib.SOCK_CLOEXEC,
        0,
      );
      fds.push(listener);
      const addr = lib.ipv4Address("127.0.0.1", port)!;
      assert.equal(lib.c.bind(listener, addr, addr.length), 0);
      assert.equal(lib.c.listen(listener, 0), 0);
      for (let i = 0; i < 2; i++) {
        const filler = lib.c.socket(lib.AF_INET, lib.SOCK_STREAM | lib.SOCK_NONBLOCK, 0);
        fds.push(filler);
        lib.c.connect(filler, addr, addr.length);
      }
      await delay(50);
      const before = new Set(injector.watchedFds());
      let outcome = "pending";
      const connecting = lib.ffiSockets().connect({ hostname: "127.0.0.1", port }).then(
        (conn) => {
          outcome = "connected";
          return conn;
        },
        (err) => {
          outcome = `failed: ${err}`;
          return null;
        },
      );
      await delay(100);
      const fd = injector.watchedFds().find((fd) => !before.has(fd));
      assert.ok(fd !== undefined, "the connecting socket is not on the epoll set");
      assert.equal(
        outcome,
        "pending",
        "the handshake could not end yet: the test needs it pending",
      );
      // An event that does not say the handshake ended (readable, peer half-closed).
      injector.queueEvent(fd, lib.EPOLLIN | lib.EPOLLRDHUP);
      await delay(100);
      assert.equal(outcome, "pending", "an event without EPOLLOUT ended the handshake");
      // Room in the queue: a SYN is retransmitted (after about 1 s) and a connect ends; the
      // filler ahead of ours may take the room first, so keep accepting.
      for (let i = 0; i < 160 && outcome === "pending"; i++) {
        const accepted = lib.c.accept4(listener, null, null, lib.SOCK_CLOEXEC);
        if (accepted >= 0) fds.push(accepted);
        await delay(50);
      }
      assert.equal(outcome, "connected");
      (await connecting)?.close();
    } finally {
      lib.useLibc(previous);
      for (const fd of fds) lib.c.close(fd);
    }
  },
);

/** Settles with `promise`, or throws after `ms` (a socket left asleep forever). */
async function _within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

ffiTest(
  "a socket epoll refuses to watch fails: connect rejects, an accepted client is closed, listen throws",
  async () => {
    const lib = await _load();
    let refuseAdd = false;
    const previous = lib.useLibc({
      ...lib.c,
      epoll_ctl: (epoll, op, fd, event) => {
        if (refuseAdd && op === lib.EPOLL_CTL_ADD) {
          lib.setErrno(lib.ENOMEM);
          return -1;
        }
        return lib.c.epoll_ctl(epoll, op, fd, event);
      },
    });
    try {
      const api = lib.ffiSockets();
      using backend = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const accepting = backend.accept();
      refuseAdd = true;
      const connect = api.connect({ hostname: "127.0.0.1", port: backend.addr.port });
      const failure = await _within(connect.then(() => null, (err: Error) => err), 2000, "connect");
      assert.match(
        String(failure),
        /epoll_ctl\(ADD\) failed: Cannot allocate memory \(os error 12\)/,
      );
      (await accepting).close();
      assert.throws(
        () => api.listen({ hostname: "127.0.0.1", port: _freePort(), reusePort: false }),
        /epoll_ctl\(ADD\) failed/,
      );

      // A raw listener; the first client it accepts cannot be watched: that client is closed,
      // the next one is served.
      refuseAdd = false;
      const port = _freePort();
      const listener = api.listen({ hostname: "127.0.0.1", port, reusePort: false });
      const accepted = listener.accept();
      refuseAdd = true;
      using first = await Deno.connect({ hostname: "127.0.0.1", port });
      const firstRead = first.read(new Uint8Array(8)).then(String, (err: Error) => err.name);
      assert.ok(
        ["null", "ConnectionReset"].includes(await _within(firstRead, 2000, "first client")),
        "the client epoll refused is not closed",
      );
      refuseAdd = false;
      using second = await Deno.connect({ hostname: "127.0.0.1", port });
      const conn = await _within(accepted, 2000, "accept");
      await second.write(new TextEncoder().encode("hi"));
      const buf = new Uint8Array(8);
      assert.equal(await _within(conn.read(buf), 2000, "read"), 2);
      conn.close();
      listener.close();
    } finally {
      lib.useLibc(previous);
    }
  },
);

ffiTest(
  "an epoll_wait that keeps failing is logged and paced, and serving resumes once it works",
  async () => {
    const lib = await _load();
    let broken = false;
    let calls = 0;
    const previous = lib.useLibc({
      ...lib.c,
      epoll_wait: (epoll, events, max, timeout) => {
        calls++;
        if (!broken) return lib.c.epoll_wait(epoll, events, max, timeout);
        lib.setErrno(lib.EBADF);
        return -1;
      },
      epoll_wait_off_thread: (epoll, events, max, timeout) => {
        calls++;
        // Failing, the real call returns at once, through the event loop (as a timer does).
        if (broken) return new Promise((resolve) => setTimeout(() => resolve(-1), 0));
        return lib.c.epoll_wait_off_thread(epoll, events, max, timeout);
      },
    });
    let log = "";
    const writeSync = Deno.stderr.writeSync;
    Deno.stderr.writeSync = (bytes: Uint8Array) => {
      log += decoder.decode(bytes);
      return bytes.length;
    };
    try {
      const api = lib.ffiSockets();
      const port = _freePort();
      const listener = api.listen({ hostname: "127.0.0.1", port, reusePort: false });
      await delay(50);
      broken = true;
      calls = 0;
      await delay(600);
      const failedCalls = calls;
      broken = false;
      // Spinning would call it thousands of times; paced from 10 ms doubling, about 7.
      assert.ok(failedCalls <= 20, `epoll_wait called ${failedCalls} times in 600 ms`);
      assert.match(log, /ERROR epoll_wait failed: Bad file descriptor \(os error 9\)/);
      assert.equal(log.match(/epoll_wait failed/g)?.length, 1, log);
      const accepted = listener.accept();
      using client = await Deno.connect({ hostname: "127.0.0.1", port });
      const conn = await _within(accepted, 3000, "accept after epoll_wait works again");
      await client.write(new Uint8Array([7]));
      assert.equal(await _within(conn.read(new Uint8Array(4)), 2000, "read"), 1);
      conn.close();
      listener.close();
    } finally {
      Deno.stderr.writeSync = writeSync;
      lib.useLibc(previous);
    }
  },
);

ffiTest("ASTER_TEST_IO_FAULTS reads seed and rates, and refuses anything else", async () => {
  const { parseFaults } = await import("./faults.ts");
  assert.deepEqual(parseFaults("seed=7,eagain=0.2,eintr=0.1,short=0.3"), {
    seed: 7,
    rates: { eagain: 0.2, eintr: 0.1, short: 0.3, reset: 0 },
  });
  assert.deepEqual(parseFaults("reset=1").valueOf(), {
    seed: 1,
    rates: { eagain: 0, eintr: 0, short: 0, reset: 1 },
  });
  for (
    const bad of ["eagain", "eagain=", "eagain=2", "typo=0.1", "seed=1.5", "short=0.6,eagain=0.6"]
  ) {
    assert.equal(typeof parseFaults(bad), "string", bad);
  }
});

ffiTest(
  "a handshake that times out rejects with Deno's TimedOut: 'Connection timed out (os error 110)'",
  async () => {
    const lib = await _load();
    const TCP_SYNCNT = 7;
    // One SYN retry: the kernel gives up after about 3 s, where the default takes minutes.
    const previous = lib.useLibc({
      ...lib.c,
      connect: (fd, addr, length) => {
        lib.c.setsockopt(fd, lib.IPPROTO_TCP, TCP_SYNCNT, lib.int32Bytes(1), 4);
        return lib.c.connect(fd, addr, length);
      },
    });
    const fds: number[] = [];
    try {
      // A full accept queue drops the SYNs (see the test above).
      const port = _freePort();
      const listener = lib.c.socket(lib.AF_INET, lib.SOCK_STREAM | lib.SOCK_CLOEXEC, 0);
      fds.push(listener);
      const addr = lib.ipv4Address("127.0.0.1", port)!;
      assert.equal(lib.c.bind(listener, addr, addr.length), 0);
      assert.equal(lib.c.listen(listener, 0), 0);
      for (let i = 0; i < 2; i++) {
        const filler = lib.c.socket(lib.AF_INET, lib.SOCK_STREAM | lib.SOCK_NONBLOCK, 0);
        fds.push(filler);
        lib.c.connect(filler, addr, addr.length);
      }
      await delay(50);
      const failure = await _within(
        lib.ffiSockets().connect({ hostname: "127.0.0.1", port }).then(
          (conn) => {
            conn.close();
            return null;
          },
          (err: Error) => err,
        ),
        8000,
        "connect",
      );
      assert.ok(failure instanceof Deno.errors.TimedOut, String(failure));
      assert.equal(failure.message, "Connection timed out (os error 110)");
    } finally {
      lib.useLibc(previous);
      for (const fd of fds) lib.c.close(fd);
    }
  },
);

/** An echo server in another process (it answers while this isolate's loop polls). */
function _echoServer(delayMs: number): string {
  return `
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log(listener.addr.port);
const pause = () => new Promise((resolve) => setTimeout(resolve, ${delayMs}));
for await (const conn of listener) {
  (async () => {
    const buf = new Uint8Array(1024);
    for (let n; (n = await conn.read(buf)) !== null;) {
      if (${delayMs} > 0) await pause();
      await conn.write(buf.subarray(0, n));
    }
  })().catch(() => {});
}`;
}

/**
 * Runs `body` against an echo server in another process answering after `delayMs`, with
 * the raw-socket layer's epoll_wait calls counted: off-thread waits for events (not the
 * timeout-0 yields to timers), and polls that found nothing.
 */
async function _withCountedEcho(
  delayMs: number,
  body: (lib: Lib, port: number, counts: { waits: number; emptyPolls: number }) => Promise<void>,
): Promise<void> {
  const lib = await _load();
  const echo = new Deno.Command(Deno.execPath(), {
    args: ["eval", _echoServer(delayMs)],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = echo.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const counts = { waits: 0, emptyPolls: 0 };
  const previous = lib.useLibc({
    ...lib.c,
    epoll_wait: (epoll, events, max, timeout) => {
      const ready = lib.c.epoll_wait(epoll, events, max, timeout);
      if (ready === 0 && timeout === 0) counts.emptyPolls++;
      return ready;
    },
    epoll_wait_off_thread: (epoll, eventsAt, max, timeout) => {
      if (timeout > 0) counts.waits++;
      return lib.c.epoll_wait_off_thread(epoll, eventsAt, max, timeout);
    },
  });
  try {
    const port = Number((await _within(lines.read(), 10_000, "echo server")).value);
    await body(lib, port, counts);
  } finally {
    lib.useLibc(previous);
    await lines.cancel().catch(() => {});
    echo.kill();
    await echo.status;
  }
}

/** One byte to the echo and back. */
async function _echoOnce(conn: ProxyConn, i: number) {
  const buf = new Uint8Array(16);
  await conn.write(new Uint8Array([i & 0xff]));
  assert.equal(await _within(conn.read(buf), 2000, `echo ${i}`), 1);
  assert.equal(buf[0], i & 0xff);
}

ffiTest(
  "after a batch the loop polls a while: a quick reply needs no wait on the helper thread",
  () =>
    _withCountedEcho(0, async (lib, port, counts) => {
      const rounds = 200;
      const waits = new Map<number, number>();
      // 0: no polling after a batch; 20 ms: far longer than the echo takes, even on a busy host.
      for (const pollMs of [0, 20]) {
        const conn = await lib.ffiSockets(null, pollMs).connect({ hostname: "127.0.0.1", port });
        counts.waits = 0;
        for (let i = 0; i < rounds; i++) await _echoOnce(conn, i);
        waits.set(pollMs, counts.waits);
        conn.close();
      }
      assert.ok(waits.get(0)! >= rounds / 2, `without polling: ${waits.get(0)} waits`);
      assert.ok(waits.get(20)! <= rounds / 10, `polling 20 ms: ${waits.get(20)} waits`);
    }),
);

ffiTest(
  "polls that catch nothing use up their credit: a slow backend's gaps are mostly not polled",
  () =>
    _withCountedEcho(15, async (lib, port, counts) => {
      // Each reply takes 15 ms, longer than the 3 ms of polling: without the credit every
      // round would poll (hundreds of empty polls); with it, a few rounds and then one in 16.
      const conn = await lib.ffiSockets(null, 3).connect({ hostname: "127.0.0.1", port });
      const rounds = 48;
      let polledRounds = 0;
      for (let i = 0; i < rounds; i++) {
        const before = counts.emptyPolls;
        await _echoOnce(conn, i);
        if (counts.emptyPolls - before > 50) polledRounds++;
      }
      conn.close();
      assert.ok(polledRounds >= 1, "no round was polled");
      assert.ok(polledRounds <= 12, `${polledRounds} of ${rounds} rounds polled`);
    }),
);

/**
 * The single-file binary (`deno task build:bun`) as users run a download: copied alone into
 * an empty folder and started from another working directory, its workers (embedded in it)
 * serve. Runs under `ASTER_UNDER_TEST=binary` (`deno task test:binary`); ignored otherwise.
 */

import assert from "node:assert/strict";
import { BUN_BINARY, renderToml, UNDER_TEST } from "./helpers/aster.ts";
import { RespClient, text } from "./helpers/resp_client.ts";
import { freePort, startRedis } from "./helpers/servers.ts";

Deno.test({
  name: "the binary starts alone in an empty folder, from another working directory",
  ignore: UNDER_TEST !== "binary",
  fn: async () => {
    await using redis = await startRedis();
    const folder = await Deno.makeTempDir({ prefix: "aster-binary-" });
    const elsewhere = await Deno.makeTempDir({ prefix: "aster-cwd-" });
    try {
      const binary = `${folder}/aster-proxy`;
      await Deno.copyFile(Deno.env.get("ASTER_BINARY") ?? BUN_BINARY, binary);
      const port = await freePort();
      const config = `${elsewhere}/aster.toml`;
      await Deno.writeTextFile(
        config,
        renderToml([{
          name: "alone",
          listen_addr: `127.0.0.1:${port}`,
          cache_type: "redis",
          thread: 2,
          servers: [`127.0.0.1:${redis.port}:1`],
        }]),
      );
      assert.deepEqual([...Deno.readDirSync(folder)].map((e) => e.name), ["aster-proxy"]);
      const child = new Deno.Command(binary, {
        args: ["--config", "aster.toml"],
        cwd: elsewhere,
        env: { ASTER_LOG: "warn" },
        stdin: "null",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      try {
        const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let out = "";
        while (!out.includes("ready\n")) {
          const { value, done } = await reader.read();
          if (done) break;
          out += value;
        }
        assert.match(out, /^aster-proxy \S+ ready$/m);
        await using client = await RespClient.connect(port);
        assert.equal(await client.command("SET", "alone", "yes"), "OK");
        assert.equal(text(await client.command("GET", "alone")), "yes");
        reader.releaseLock();
      } finally {
        child.kill("SIGTERM");
        assert.equal((await child.status).code, 0);
        await child.stdout.cancel().catch(() => {});
      }
    } finally {
      await Deno.remove(folder, { recursive: true });
      await Deno.remove(elsewhere, { recursive: true });
    }
  },
});

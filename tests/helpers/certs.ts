/**
 * Test certificates made with `openssl` in a temporary directory: a CA, a server
 * certificate for 127.0.0.1 / localhost, a client certificate, a second (wrong) CA with its
 * own server certificate, an expired server certificate, and a key that matches none.
 */

/** Paths of the PEM files `makeCerts` wrote. */
export interface TestCerts extends AsyncDisposable {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  /** A second server certificate (same CA, same key): for reload tests. */
  server2Cert: string;
  clientCert: string;
  clientKey: string;
  /** A CA unrelated to `caCert`, and a server certificate it signed. */
  otherCaCert: string;
  otherServerCert: string;
  otherServerKey: string;
  /** Signed by `caCert`, valid in the past only. */
  expiredCert: string;
  /** A private key matching no certificate. */
  strayKey: string;
  /** The file's text. */
  read(path: string): string;
}

async function _openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Makes the certificates; `await using` removes the directory. */
export async function makeCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "aster-certs-" });
  const p = (name: string) => `${dir}/${name}`;
  const ext = p("san.ext");
  await Deno.writeTextFile(
    ext,
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:redis.test\n" +
      "extendedKeyUsage=serverAuth,clientAuth\n",
  );
  const key = (name: string) =>
    _openssl(dir, [
      "genpkey",
      "-algorithm",
      "EC",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-out",
      name,
    ]);
  const ca = async (name: string, cn: string) => {
    await key(`${name}.key`);
    await _openssl(dir, [
      "req",
      "-x509",
      "-new",
      "-key",
      `${name}.key`,
      "-subj",
      `/CN=${cn}`,
      "-days",
      "2",
      "-out",
      `${name}.crt`,
    ]); // deno-fmt-ignore
  };
  const leaf = async (name: string, keyName: string, caName: string, dates: string[]) => {
    await _openssl(dir, [
      "req",
      "-new",
      "-key",
      keyName,
      "-subj",
      `/CN=${name}`,
      "-out",
      `${name}.csr`,
    ]); // deno-fmt-ignore
    await _openssl(dir, [
      "x509", "-req", "-in", `${name}.csr`, "-CA", `${caName}.crt`, "-CAkey", `${caName}.key`,
      "-CAcreateserial", "-extfile", ext, "-out", `${name}.crt`, ...dates,
    ]); // deno-fmt-ignore
  };
  await ca("ca", "Aster Test CA");
  await ca("other-ca", "Other CA");
  await key("server.key");
  await key("client.key");
  await key("other-server.key");
  await key("stray.key");
  await leaf("server", "server.key", "ca", ["-days", "2"]);
  await leaf("server2", "server.key", "ca", ["-days", "3"]);
  await leaf("client", "client.key", "ca", ["-days", "2"]);
  await leaf("other-server", "other-server.key", "other-ca", ["-days", "2"]);
  // `openssl ca` (not `x509`) takes explicit dates: a certificate that expired in 2020.
  await _openssl(dir, [
    "req",
    "-new",
    "-key",
    "server.key",
    "-subj",
    "/CN=expired",
    "-out",
    "expired.csr",
  ]);
  await Deno.mkdir(p("db"));
  await Deno.writeTextFile(p("db/index.txt"), "");
  await Deno.writeTextFile(p("db/serial"), "01\n");
  await Deno.writeTextFile(
    p("ca.cnf"),
    "[ca]\ndefault_ca = d\n[d]\ndatabase = db/index.txt\nnew_certs_dir = db\n" +
      "serial = db/serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n",
  );
  await _openssl(dir, [
    "ca",
    "-batch",
    "-config",
    "ca.cnf",
    "-cert",
    "ca.crt",
    "-keyfile",
    "ca.key",
    "-in",
    "expired.csr",
    "-out",
    "expired.crt",
    "-notext",
    "-startdate",
    "20200101000000Z",
    "-enddate",
    "20200102000000Z",
  ]); // deno-fmt-ignore
  return {
    dir,
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    server2Cert: p("server2.crt"),
    clientCert: p("client.crt"),
    clientKey: p("client.key"),
    otherCaCert: p("other-ca.crt"),
    otherServerCert: p("other-server.crt"),
    otherServerKey: p("other-server.key"),
    expiredCert: p("expired.crt"),
    strayKey: p("stray.key"),
    read: (path) => Deno.readTextFileSync(path),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

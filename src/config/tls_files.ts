/**
 * Reads the PEM files a cluster's TLS keys name and checks them before anything listens:
 * each certificate parses, is valid now (not yet valid or expired is an error; a CA bundle
 * needs one valid certificate), and its key matches. `--check`, start and every reload go
 * through here, so a bad file is refused with its path and reason, and a reload with one
 * keeps the running certificate.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { ClusterConfig, TlsPem } from "./schema.ts";

/** Reads a file's text (the runtime seam's `readTextFile`); throws with a reason. */
export type ReadText = (path: string) => Promise<string>;

/** The PEM blocks of `kind` ("CERTIFICATE", ...) in `text`. */
function _blocks(text: string, kind: RegExp): string[] {
  const re = new RegExp(`-----BEGIN (${kind.source})-----[\\s\\S]+?-----END \\1-----`, "g");
  return [...text.matchAll(re)].map((m) => m[0]);
}

/**
 * Problems with the certificates of a PEM text (empty when it is usable). A CA `bundle` is
 * usable while any of its certificates is valid now: system bundles carry expired roots, and
 * a rotation keeps the old CA beside the new one until it expires (redis-server takes both).
 */
function _checkCerts(
  key: string,
  path: string,
  text: string,
  now: Date,
  bundle = false,
): string[] {
  const pems = _blocks(text, /CERTIFICATE/);
  if (pems.length === 0) return [`${key} ${path}: no PEM certificate in the file`];
  const problems: string[] = [];
  const outOfDate: string[] = [];
  for (const pem of pems) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch (err) {
      problems.push(`${key} ${path}: not a valid certificate (${_reason(err)})`);
      continue;
    }
    const from = new Date(cert.validFrom);
    const to = new Date(cert.validTo);
    const subject = cert.subject.replaceAll("\n", ", ");
    if (now < from) {
      outOfDate.push(
        `${key} ${path}: certificate ${subject} is not valid before ${cert.validFrom}`,
      );
    } else if (now > to) {
      outOfDate.push(`${key} ${path}: certificate ${subject} expired on ${cert.validTo}`);
    }
  }
  const anyValid = outOfDate.length + problems.length < pems.length;
  if (!bundle || !anyValid) problems.push(...outOfDate);
  return problems;
}

/** Problems with a certificate/key pair: the key parses and matches the first certificate. */
function _checkPair(
  keys: { cert: string; key: string },
  paths: { cert: string; key: string },
  pem: { cert: string; key: string },
): string[] {
  let privateKey;
  try {
    privateKey = createPrivateKey(pem.key);
  } catch (err) {
    return [`${keys.key} ${paths.key}: not a valid PEM private key (${_reason(err)})`];
  }
  const first = _blocks(pem.cert, /CERTIFICATE/)[0];
  try {
    if (!new X509Certificate(first).checkPrivateKey(privateKey)) {
      return [
        `${keys.key} ${paths.key} does not match the certificate in ${keys.cert} ${paths.cert}`,
      ];
    }
  } catch {
    // The certificate's own error is reported already.
  }
  return [];
}

function _reason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0];
}

/** One side's files: read each, then check certificates, CA and pair. */
async function _side(
  read: ReadText,
  keys: { cert: string; key: string; ca: string },
  paths: { cert: string | null; key: string | null; ca: string | null },
  now: Date,
  problems: string[],
): Promise<TlsPem> {
  const text = async (key: string, path: string | null): Promise<string | null> => {
    if (path === null) return null;
    try {
      return await read(path);
    } catch (err) {
      problems.push(`${key}: cannot read ${path}: ${_reason(err)}`);
      return null;
    }
  };
  const pem: TlsPem = {
    cert: await text(keys.cert, paths.cert),
    key: await text(keys.key, paths.key),
    ca: await text(keys.ca, paths.ca),
  };
  const before = problems.length;
  if (pem.cert !== null) problems.push(..._checkCerts(keys.cert, paths.cert!, pem.cert, now));
  if (pem.ca !== null) problems.push(..._checkCerts(keys.ca, paths.ca!, pem.ca, now, true));
  if (pem.cert !== null && pem.key !== null && problems.length === before) {
    problems.push(
      ..._checkPair(keys, { cert: paths.cert!, key: paths.key! }, {
        cert: pem.cert,
        key: pem.key,
      }),
    );
  }
  return pem;
}

/**
 * Reads and checks the TLS files of `cluster`, setting its `tlsPem` and `backendTlsPem`;
 * returns the problems found, each naming the cluster, the key and the file.
 */
export async function loadTlsFiles(
  cluster: ClusterConfig,
  read: ReadText,
  now = new Date(),
): Promise<string[]> {
  const problems: string[] = [];
  if (cluster.tlsCert !== null) {
    cluster.tlsPem = await _side(
      read,
      { cert: "tls_cert", key: "tls_key", ca: "tls_ca" },
      { cert: cluster.tlsCert, key: cluster.tlsKey, ca: cluster.tlsCa },
      now,
      problems,
    );
  }
  if (cluster.backendTls) {
    cluster.backendTlsPem = await _side(
      read,
      { cert: "backend_tls_cert", key: "backend_tls_key", ca: "backend_tls_ca" },
      { cert: cluster.backendTlsCert, key: cluster.backendTlsKey, ca: cluster.backendTlsCa },
      now,
      problems,
    );
  }
  return problems.map((p) => `cluster ${cluster.name}: ${p}`);
}

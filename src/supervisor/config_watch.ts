/**
 * `--reload`: calls back when the config file's content changes, however it is changed: written
 * in place, replaced by a rename (editors), or swapped behind symlinks (a Kubernetes ConfigMap
 * volume: `aster.toml -> ..data/aster.toml`, `..data -> ..<timestamp>`, where each update makes
 * a new `..<timestamp>` folder, renames a new `..data` over the old one and deletes the old
 * folder).
 */
import { logWarn } from "../log.ts";
import { runtime } from "../runtime/runtime.ts";

/** Quiet time after the last event before the file is read again, ms. */
const DEBOUNCE_MS = 200;

/**
 * Watches the folder the config path names (which a ConfigMap update leaves in place) and the
 * folder its file really lies in now (where an in-place edit shows), and calls `onChange` when
 * the content read after a burst of events differs from the last one seen.
 */
export function watchConfig(path: string, onChange: () => void): void {
  const slash = path.lastIndexOf("/");
  const folder = runtime.realPath(slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash));
  const file = `${folder === "/" ? "" : folder}/${path.slice(slash + 1)}`;
  let last: Promise<string | null> = _read(file);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const watching = new Set<string>();

  const check = () => {
    const before = last;
    last = _read(file);
    Promise.all([before, last]).then(([was, now]) => {
      if (now !== null && now !== was) onChange();
    });
    const real = _realFolder(file);
    if (real !== null) watch(real);
  };
  const watch = (dir: string) => {
    if (watching.has(dir)) return;
    watching.add(dir);
    (async () => {
      for await (const event of runtime.watchFolder(dir)) {
        if (event.kind === "access") continue;
        clearTimeout(timer);
        timer = setTimeout(check, DEBOUNCE_MS);
      }
    })().catch((err) => {
      // The old folder of a swapped ConfigMap goes away: the others still watch.
      if (dir === folder) logWarn(`watching ${path} stopped: ${err}`);
    }).finally(() => watching.delete(dir));
  };
  watch(folder);
  const real = _realFolder(file);
  if (real !== null) watch(real);
}

async function _read(file: string): Promise<string | null> {
  try {
    return await runtime.readTextFile(file);
  } catch {
    return null; // between a delete and a create: the next event reads it
  }
}

function _realFolder(file: string): string | null {
  try {
    const real = runtime.realPath(file);
    return real.slice(0, real.lastIndexOf("/")) || "/";
  } catch {
    return null;
  }
}

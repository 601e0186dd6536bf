/**
 * `--reload`: calls back when the config file's content changes, however it is changed: written
 * in place, replaced by a rename (editors), or swapped behind symlinks (a Kubernetes ConfigMap
 * volume: `aster.toml -> ..data/aster.toml`, `..data -> ..<timestamp>`, where each update makes
 * a new `..<timestamp>` folder, renames a new `..data` over the old one and deletes the old
 * folder).
 */
import { logWarn } from "../log.ts";
import { type FileEvent, runtime } from "../runtime/runtime.ts";

/** Quiet time after the last event before the file is read again, ms. */
const DEBOUNCE_MS = 200;
/** Longest a burst of events may put the read off, ms (a busy file beside the config). */
const MAX_WAIT_MS = 2000;

/**
 * Watches the folder the config path names (which a ConfigMap update leaves in place) and the
 * folder its file really lies in now (where an in-place edit shows), and calls `onChange` when
 * the content read after a burst of events differs from the last one seen.
 */
export function watchConfig(path: string, onChange: () => void): void {
  const slash = path.lastIndexOf("/");
  const folder = runtime.realPath(slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash));
  const file = `${folder === "/" ? "" : folder}/${path.slice(slash + 1)}`;
  let real = _realPath(file);
  let last: Promise<string | null> = _read(file);
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** When the first event of the current burst came (0: none pending). */
  let burstStart = 0;
  const watchers = new Map<string, AsyncIterator<FileEvent>>();

  const check = () => {
    burstStart = 0;
    const before = last;
    last = _read(file);
    Promise.all([before, last]).then(([was, now]) => {
      if (now !== null && now !== was) onChange();
    });
    // Between a delete and a create the file resolves nowhere: keep watching where it was.
    real = _realPath(file) ?? real;
    const realFolder = real === null ? null : _folderOf(real);
    if (realFolder !== null) watch(realFolder);
    // A folder the file no longer lies in (a ConfigMap's old ..<timestamp>, deleted): let go.
    for (const [dir, iterator] of watchers) {
      if (dir !== folder && dir !== realFolder) {
        watchers.delete(dir);
        iterator.return?.();
      }
    }
  };
  /** The file, where it really lies, or a ConfigMap's hidden entries (..data, ..<timestamp>). */
  const relevant = (paths: readonly string[]) =>
    paths.some((p) => p === file || p === real || p.startsWith(`${folder}/..`));
  const watch = (dir: string) => {
    if (watchers.has(dir)) return;
    let iterator: AsyncIterator<FileEvent>;
    try {
      iterator = runtime.watchFolder(dir)[Symbol.asyncIterator]();
    } catch (err) {
      // A folder gone, or inotify's limits reached: the other watches go on.
      if (dir === folder) logWarn(`cannot watch ${path}: ${err}`);
      return;
    }
    watchers.set(dir, iterator);
    (async () => {
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        const event = next.value;
        if (event.kind === "access" || !relevant(event.paths)) continue;
        clearTimeout(timer);
        const now = performance.now();
        if (burstStart === 0) burstStart = now;
        // Quiet for DEBOUNCE_MS, or at most MAX_WAIT_MS after the burst began.
        timer = setTimeout(check, now - burstStart > MAX_WAIT_MS ? 0 : DEBOUNCE_MS);
      }
    })().catch((err) => {
      // The old folder of a swapped ConfigMap goes away: the others still watch.
      if (dir === folder) logWarn(`watching ${path} stopped: ${err}`);
    }).finally(() => {
      if (watchers.get(dir) === iterator) watchers.delete(dir);
    });
  };
  watch(folder);
  if (real !== null) watch(_folderOf(real));
}

async function _read(file: string): Promise<string | null> {
  try {
    return await runtime.readTextFile(file);
  } catch {
    return null; // between a delete and a create: the next event reads it
  }
}

function _realPath(file: string): string | null {
  try {
    return runtime.realPath(file);
  } catch {
    return null;
  }
}

function _folderOf(file: string): string {
  return file.slice(0, file.lastIndexOf("/")) || "/";
}

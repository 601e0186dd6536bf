# Aster as one compiled binary in a small glibc image.
#
#   docker build -t aster-proxy .
#   docker run --rm -p 9001:9001 -v "$PWD/my.toml:/etc/aster/aster.toml:ro" aster-proxy
#
# The image runs `/aster-proxy --config /etc/aster/aster.toml`. That path holds a copy of
# default.toml, the commented sample, whose listener and backends are on 127.0.0.1 inside
# the container: mount your own config over it (listening on 0.0.0.0), or pass other
# flags after the image name (`--config /other/path.toml`, `--check`, `--version`).

# --- build: deno compile ------------------------------------------------------------------
FROM denoland/deno:2.9.6 AS build
WORKDIR /app

# Dependencies first, exactly as locked, so this layer is reused until deno.json or
# deno.lock change.
COPY deno.json deno.lock ./
RUN deno install --frozen

COPY . .
# Every module of the proxy and its worker, still held to the lock file.
RUN deno cache --frozen main.ts src/worker/worker_main.ts
# deno.json's `compile` task (it embeds src/worker/worker_main.ts with --include) writes
# dist/aster-proxy. deno compile downloads the denort runtime: the build needs internet.
# It grants --allow-ffi, so clusters with io = "auto" (the default) run on raw sockets;
# COMPILE_TASK=compile:sandboxed builds a binary kept inside Deno's sandbox (Deno's socket ops).
ARG COMPILE_TASK=compile
RUN deno task ${COMPILE_TASK} && ./dist/aster-proxy --version

# --- runtime: glibc + libgcc, no shell, non-root -------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /app/dist/aster-proxy /aster-proxy
COPY --from=build /app/default.toml /etc/aster/aster.toml
# distroless's "nonroot" user, by number so runAsNonRoot policies can verify it.
USER 65532:65532
EXPOSE 9001
ENTRYPOINT ["/aster-proxy"]
CMD ["--config", "/etc/aster/aster.toml"]

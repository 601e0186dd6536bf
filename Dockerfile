# Aster as one single-file binary in a small glibc image, built by Deno or by Bun.
#
#   docker build -t aster-proxy .                     # deno task compile (the default)
#   docker build --build-arg BUILD=bun -t aster-proxy . # deno task build:bun
#   docker run --rm -p 9001:9001 -v "$PWD/my.toml:/etc/aster/aster.toml:ro" aster-proxy
#
# The image runs `/aster-proxy --config /etc/aster/aster.toml`. That path holds a copy of
# default.toml, the commented sample, whose listener and backends are on 127.0.0.1 inside
# the container: mount your own config over it (listening on 0.0.0.0), or pass other
# flags after the image name (`--config /other/path.toml`, `--check`, `--version`).

# Which build goes into the image: deno (deno task compile) or bun (deno task build:bun).
ARG BUILD=deno

# --- build with Deno: deno compile ----------------------------------------------------------
FROM denoland/deno:2.9.6 AS build-deno
WORKDIR /app

# Dependencies first, exactly as locked, so this layer is reused until deno.json or
# deno.lock change.
COPY deno.json deno.lock package.json ./
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

# --- build with Bun: bun build --compile -----------------------------------------------------
FROM oven/bun:1.4.5 AS bun
FROM denoland/deno:2.9.6 AS build-bun
WORKDIR /app
COPY --from=bun /usr/local/bin/bun /usr/local/bin/bun
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile
COPY . .
# deno.json's `build:bun` task: the proxy and its worker in dist/aster-proxy, no network
# needed past the npm install above. Bun's own sockets serve (io = "auto").
RUN deno task build:bun && ./dist/aster-proxy --version

# --- the build chosen: BUILD=deno (default) or BUILD=bun ------------------------------------
FROM build-${BUILD} AS build

# --- runtime: glibc + libgcc, no shell, non-root -------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /app/dist/aster-proxy /aster-proxy
COPY --from=build /app/default.toml /etc/aster/aster.toml
# distroless's "nonroot" user, by number so runAsNonRoot policies can verify it.
USER 65532:65532
EXPOSE 9001
# The binary asks its own /healthz (metrics_addr in the config, or -m): distroless has no
# shell or curl. With no metrics endpoint configured it exits 0 (nothing to ask). A config
# mounted elsewhere needs the same --config here (docs/containers.md).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/aster-proxy", "--healthcheck", "--config", "/etc/aster/aster.toml"]
ENTRYPOINT ["/aster-proxy"]
CMD ["--config", "/etc/aster/aster.toml"]

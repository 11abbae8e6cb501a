# Gavel: multi-stage build. The web client is committed pre-built in web/dist and
# embedded into the binary, so no Node.js stage is needed.
#
#   docker build -t gavel .
#   docker run -p 3000:3000 -v gavel-data:/data -e GAVEL_ADMIN_TOKEN=change-me gavel
#
# (Not built in this project's CI: its machines have no Docker engine.)

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so code changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY tools tools
COPY web/dist web/dist
RUN cargo build --release --locked -p gavel-server \
 && strip target/release/gavel

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /data gavel \
 && mkdir -p /data && chown gavel /data
COPY --from=build /src/target/release/gavel /usr/local/bin/gavel
USER gavel
VOLUME /data
EXPOSE 3000
ENV GAVEL_LISTEN=0.0.0.0:3000 \
    GAVEL_DATA_DIR=/data \
    GAVEL_LOG_FORMAT=json
HEALTHCHECK --interval=10s --timeout=2s CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3000 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '\"ok\"' <&3"]
ENTRYPOINT ["/usr/local/bin/gavel", "serve"]

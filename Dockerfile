# Multi-stage build of the `clickstream` binary into a small non-root runtime image.
# DuckDB is compiled from source here (feature bundled-duckdb); the native dev stack links
# the prebuilt library from npm instead (see local/lib.sh).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin clickstream --features clickstream/bundled-duckdb

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/clickstream --create-home clickstream
COPY --from=build /src/target/release/clickstream /usr/local/bin/clickstream
COPY clickstream.example.toml /etc/clickstream/clickstream.toml
USER clickstream
WORKDIR /var/lib/clickstream
ENV CLICKSTREAM_CONFIG=/etc/clickstream/clickstream.toml
EXPOSE 8080 3000 9090
ENTRYPOINT ["clickstream"]
CMD ["dev"]

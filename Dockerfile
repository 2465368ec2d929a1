# mnp-gateway: multi-stage build on Debian bookworm.
# The build stage runs scripts/install-deps.sh --build, the script CI runs
# (CI installs the test tools too).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY scripts/deps.sh scripts/install-deps.sh scripts/check-deps.sh scripts/
RUN ./scripts/install-deps.sh --build
COPY . .
ENV MNP_REQUIRE_DPDK=1
RUN cargo build --release --locked -p mnp-gateway -p mnp-bench

# Runtime: Debian's dpdk package (its librte-* libraries and PMDs), the
# binaries, the example configs.
FROM debian:bookworm-slim AS runtime
# (With its recommends: that is how the dpdk package brings librte-* and the PMDs.)
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpdk ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/mnp-gateway /src/target/release/mnp-bench /usr/local/bin/
COPY --from=build /src/configs /etc/mnp/configs
WORKDIR /etc/mnp
# The demo needs nothing else; an appliance mounts its config and keys:
#   docker run --privileged -v /dev/hugepages:/dev/hugepages -v /etc/mnp:/etc/mnp image run --config /etc/mnp/gateway.toml
ENTRYPOINT ["mnp-gateway"]
CMD ["demo", "--config", "/etc/mnp/configs/demo.toml", "--duration", "0"]

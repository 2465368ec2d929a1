# mnp-gateway: multi-stage build on Debian bookworm.
# The build stage runs scripts/install-deps.sh --build, the script CI runs
# (CI installs the test tools too). .dockerignore keeps target/, key material,
# state and captures out of the build context (scripts/check-docker-context.py).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY scripts/deps.sh scripts/install-deps.sh scripts/check-deps.sh scripts/
RUN ./scripts/install-deps.sh --build
COPY . .
ENV MNP_REQUIRE_DPDK=1
RUN cargo build --release --locked -p mnp-gateway -p mnp-bench

# Runtime: Debian's dpdk package (its librte-* libraries and PMDs, with its
# recommends), the binaries, the example configs (no key material: the demo
# makes its own at first run, an appliance mounts its keys read-only).
FROM debian:bookworm-slim AS runtime
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpdk libcap2-bin ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/mnp-gateway /src/target/release/mnp-bench /usr/local/bin/
# The daemon runs as an unprivileged user. The binary may hold only what a
# DPDK or AF_XDP/AF_PACKET port needs, as *permitted* file capabilities (no
# effective bit: exec never fails when `docker run` grants fewer; the daemon
# raises what it was granted when it starts ports). Grant them per run:
#   --cap-add NET_RAW --cap-add NET_ADMIN --cap-add IPC_LOCK --cap-add SYS_NICE --cap-add BPF
RUN setcap cap_net_raw,cap_net_admin,cap_ipc_lock,cap_sys_nice,cap_bpf=p /usr/local/bin/mnp-gateway \
    && useradd --system --uid 10001 --home-dir /var/lib/mnp --create-home --shell /usr/sbin/nologin mnp
COPY --chown=mnp:mnp configs/*.toml /var/lib/mnp/configs/
USER mnp
WORKDIR /var/lib/mnp
# The metrics endpoint (control.metrics; loopback unless metrics_remote = true:
# publish this port only after binding it to 0.0.0.0 on a management network).
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["mnp-gateway", "stats", "--endpoint", "127.0.0.1:9464"]
# The demo needs nothing else. An appliance mounts its config and keys, e.g.
#   docker run --network host --cap-drop ALL --cap-add NET_RAW --cap-add NET_ADMIN \
#     --cap-add IPC_LOCK --cap-add SYS_NICE -v /dev/hugepages:/dev/hugepages \
#     -v /etc/mnp:/etc/mnp:ro IMAGE run --config /etc/mnp/gateway.toml
# Ports on the host's own interfaces (driver = "af_packet" or "af_xdp", iface =
# "eth1"; see configs/kernel.toml) need --network host, so the container sees
# them; af_packet needs NET_RAW; af_xdp also NET_ADMIN, BPF and unlimited
# locked memory for its umem:
#   docker run --network host --cap-drop ALL --cap-add NET_RAW --cap-add NET_ADMIN \
#     --cap-add BPF --cap-add IPC_LOCK --ulimit memlock=-1 \
#     -v /etc/mnp:/etc/mnp:ro IMAGE run --config /etc/mnp/gateway.toml
ENTRYPOINT ["mnp-gateway"]
CMD ["demo", "--config", "/var/lib/mnp/configs/demo.toml", "--duration", "0"]

//! systemd's service notification protocol (sd_notify(3)), spoken directly
//! on the datagram socket systemd names in `NOTIFY_SOCKET` — no libsystemd.
//!
//! The daemon says `READY=1` once its ports are up and its workers run,
//! `RELOADING=1` / `READY=1` around a reload, `STOPPING=1` when it drains,
//! a `STATUS=` line with its rates, and `WATCHDOG=1` every half of
//! `WATCHDOG_USEC` while every worker is alive (a dead worker stops the
//! pings, so systemd restarts the service). Without `NOTIFY_SOCKET` (not
//! started by systemd) every call does nothing.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
    next_ping: Instant,
}

impl Notifier {
    /// From `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace)
    /// and `WATCHDOG_USEC` (honoured if `WATCHDOG_PID` is unset or this
    /// process). A socket that cannot be reached is reported once and then
    /// ignored: notification never stops the gateway.
    pub fn from_env() -> Self {
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0)
            .filter(|_| {
                std::env::var("WATCHDOG_PID")
                    .map_or(true, |p| p.trim() == std::process::id().to_string())
            })
            .map(Duration::from_micros);
        let target = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty())
            .and_then(|s| match open(&s) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!("NOTIFY_SOCKET={s}: {e}; not notifying systemd");
                    None
                }
            });
        Self {
            target,
            watchdog,
            next_ping: Instant::now(),
        }
    }

    /// Whether a service manager listens.
    pub fn active(&self) -> bool {
        self.target.is_some()
    }

    fn send(&self, msg: &str) {
        if let Some((sock, addr)) = &self.target {
            // Best effort, as sd_notify: a lost notification is systemd's
            // timeout to report, not a reason to stop forwarding.
            let _ = sock.send_to_addr(msg.as_bytes(), addr);
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!(
            "READY=1\nSTATUS={status}\nMAINPID={}",
            std::process::id()
        ));
    }

    pub fn reloading(&self) {
        self.send("RELOADING=1\nSTATUS=reloading");
    }

    pub fn reloaded(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=draining");
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    /// Ping the watchdog when half its interval has passed, if `healthy`.
    pub fn tick(&mut self, now: Instant, healthy: bool) {
        let Some(interval) = self.watchdog else {
            return;
        };
        if healthy && now >= self.next_ping {
            self.send("WATCHDOG=1");
            self.next_ping = now + interval / 2;
        }
    }
}

fn open(name: &str) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let addr = match name.strip_prefix('@') {
        Some(abs) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abs.as_bytes())?
        }
        None => SocketAddr::from_pathname(name)?,
    };
    Ok((UnixDatagram::unbound()?, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_listening_socket() {
        let dir = mnp_testkit::tempdir("notify");
        let path = dir.join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        let mut n = Notifier {
            target: Some(open(path.to_str().unwrap()).unwrap()),
            watchdog: Some(Duration::from_millis(100)),
            next_ping: Instant::now(),
        };
        n.ready("forwarding");
        let now = Instant::now();
        n.tick(now, true);
        n.tick(now, true); // not due again yet
        n.tick(now + Duration::from_millis(60), false); // due, but unhealthy
        n.stopping();
        let mut got = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        while let Ok(k) = listener.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..k]).into_owned());
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with("READY=1\nSTATUS=forwarding\nMAINPID="));
        assert_eq!(got[1], "WATCHDOG=1");
        assert!(got[2].starts_with("STOPPING=1"));
    }
}

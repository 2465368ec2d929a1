//! The loopback HTTP endpoint: `GET /metrics` (Prometheus text) and
//! `GET /why?frame=HEX[&now=SECS]` (the current snapshot's verdict on a frame,
//! check by check). One request per connection, served in turn on one thread;
//! the listener never binds outside loopback (checked at config load).

use crate::decode;
use mnp_ctrl::metrics::{self, ControlView, LatencySummary, WorkerView};
use mnp_dataplane::rcu::SnapshotCell;
use mnp_dataplane::stats::WorkerCounters;
use mnp_dataplane::worker::Clock;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct HttpState {
    pub workers: Vec<(String, u16, Arc<WorkerCounters>)>,
    pub view: Arc<Mutex<ControlView>>,
    pub latency: Arc<Mutex<hdrhistogram::Histogram<u64>>>,
    pub cell: Arc<SnapshotCell>,
    pub clock: Clock,
}

impl HttpState {
    pub fn metrics(&self) -> String {
        let workers: Vec<WorkerView> = self
            .workers
            .iter()
            .map(|(port, queue, c)| WorkerView {
                port: port.clone(),
                queue: *queue,
                stats: c.read(),
            })
            .collect();
        let view = self.view.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let lat = LatencySummary {
            quantiles: [0.5, 0.9, 0.99, 0.999]
                .iter()
                .map(|q| (*q, h.value_at_quantile(*q) as f64 / 1e9))
                .collect(),
            count: h.len(),
            sum_seconds: h.mean() * h.len() as f64 / 1e9,
        };
        metrics::render(&workers, &view, &lat)
    }
}

pub fn serve(listener: TcpListener, stop: Arc<AtomicBool>, state: Arc<HttpState>) {
    let _ = listener.set_nonblocking(true);
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = handle(stream, &state);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn handle(mut stream: TcpStream, state: &HttpState) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(&stream).take_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let param = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics(),
        ),
        ("GET", "/why") => match param("frame").map(|h| hex::decode(h.trim())) {
            Some(Ok(frame)) => {
                let now = param("now")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| state.clock.now());
                let g = crossbeam::epoch::pin();
                (
                    "200 OK",
                    "text/plain; charset=utf-8",
                    decode::why(&frame, state.cell.load(&g), now),
                )
            }
            _ => (
                "400 Bad Request",
                "text/plain",
                "give ?frame=HEX\n".to_string(),
            ),
        },
        _ => (
            "404 Not Found",
            "text/plain",
            "try /metrics or /why?frame=HEX\n".to_string(),
        ),
    };
    write!(stream, "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
    stream.flush()
}

trait TakeLine {
    fn take_line(self, out: &mut String) -> std::io::Result<usize>;
}

impl<R: std::io::Read> TakeLine for BufReader<R> {
    fn take_line(mut self, out: &mut String) -> std::io::Result<usize> {
        self.read_line(out)
    }
}

/// A minimal client: GET `path` from `addr`, return the body.
pub fn get(addr: &str, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    std::io::Read::read_to_string(&mut s, &mut resp).map_err(|e| format!("{addr}: {e}"))?;
    let (head, body) = resp.split_once("\r\n\r\n").ok_or("malformed response")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "{addr}{path}: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    Ok(body.to_string())
}

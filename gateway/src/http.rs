//! The control thread's HTTP endpoint (`control.metrics`, loopback unless
//! `control.metrics_remote`): `GET /metrics` (Prometheus text), `GET /stats`
//! (the same figures as JSON), `GET /flows?top=N&sort=…` (per-credential
//! counters, JSON), `GET /healthz`, and `GET /why?frame=HEX[&now=SECS]` (the running gateway's
//! verdict on a frame, check by check, against its current snapshot and its
//! live replay windows, read only), and `GET /trace?count=N[&filter=F][&timeout=S]`
//! (the next N packets the workers judge, as JSON: see `trace.rs`). Nothing
//! here touches the packet path; a trace arms the workers' tap, which costs
//! them one atomic load per burst while nobody traces.

use crate::decode;
use mnp_ctrl::metrics::{self, ControlView, LatencySummary, WorkerView};
use mnp_dataplane::rcu::SnapshotCell;
use mnp_dataplane::stats::WorkerCounters;
use mnp_dataplane::worker::Clock;
use std::io::Write;
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
    /// The workers' replay windows and rate buckets, read by `/why`.
    pub replay: Arc<mnp_dataplane::replay::ReplayTable>,
    /// The live trace's tap, and the workers' labels by index.
    pub trace: Arc<mnp_dataplane::trace::TraceTap>,
    /// One trace at a time.
    pub tracing: tokio::sync::Mutex<()>,
    /// Each worker's flow table (empty: `[workers] flows = 0`).
    pub flows: Vec<Arc<mnp_dataplane::flows::FlowTable>>,
}

impl HttpState {
    /// The figures of `/metrics` as [`crate::statsjson::Stats`].
    pub fn stats(&self) -> crate::statsjson::Stats {
        use mnp_dataplane::DropReason;
        let view = self.view.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut total = mnp_dataplane::stats::BurstStats::default();
        let workers = self
            .workers
            .iter()
            .map(|(port, queue, c)| {
                let s = c.read();
                total.add(&s);
                crate::statsjson::Worker {
                    port: port.clone(),
                    queue: *queue,
                    rx: s.rx,
                    forwarded: s.forwarded,
                    legacy_forwarded: s.legacy_forwarded,
                    audit_forwarded: s.audit_forwarded(),
                    local: s.local,
                    dropped: s.dropped(),
                }
            })
            .collect();
        let by_reason = |f: &dyn Fn(DropReason) -> u64| {
            DropReason::ALL
                .iter()
                .map(|r| (r.name().to_string(), f(*r)))
                .filter(|(_, n)| *n > 0)
                .collect()
        };
        let h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let st = &view.stats;
        crate::statsjson::Stats {
            version: view.build.version.clone(),
            workers,
            drops: by_reason(&|r| total.drop_count(r)),
            audit_forwarded: by_reason(&|r| total.audit_count(r)),
            snapshot_generation: st.generation,
            reloads_ok: st.reloads_ok,
            reloads_failed: st.reloads_failed,
            last_reload_ok: st.last_reload_ok,
            last_reload_error: st.last_error.clone(),
            revocation_lists_loaded: st.revocations_loaded,
            revocation_lists_rejected: st.revocations_rejected,
            credentials_admitted: st.credentials_admitted,
            credentials_rejected: st.credentials_rejected,
            registry_credentials: view.registry,
            replay_windows: view.replay_occupied,
            replay_windows_capacity: view.replay_capacity,
            peers: view
                .peers
                .iter()
                .map(|(n, h)| (n.clone(), *h as f64 / 1000.0))
                .collect(),
            fleet: st.fleet_reachable.map(|reachable| crate::statsjson::Fleet {
                reachable,
                policy_version: st.fleet_policy_version,
                revocations_version: st.fleet_revocations_version,
                bundles_applied: st.fleet_applied,
                bundles_rejected: st.fleet_rejected,
            }),
            burst_latency_seconds: ["0.5", "0.9", "0.99", "0.999"]
                .iter()
                .map(|q| {
                    let v = h.value_at_quantile(q.parse().unwrap_or(0.5)) as f64 / 1e9;
                    (q.to_string(), v)
                })
                .collect(),
        }
    }

    /// `GET /flows?top=N&sort=packets|bytes|drops|recent`.
    pub fn flows(&self, top: usize, sort: &str) -> crate::flowsjson::Flows {
        let g = crossbeam::epoch::pin();
        let snap = self.cell.load(&g);
        let all: Vec<crate::flowsjson::Flow> = mnp_dataplane::flows::merge(&self.flows)
            .into_iter()
            .map(|f| crate::flowsjson::Flow {
                authority: f.authority,
                authority_name: snap.authorities.get(&f.authority).map(|a| a.name.clone()),
                credential: f.credential,
                packets: f.packets,
                bytes: f.bytes,
                dropped: f.dropped(),
                last_seen_ms: f.last_ms,
                drops: f
                    .drops
                    .iter()
                    .map(|(r, n)| (r.name().to_string(), *n))
                    .collect(),
            })
            .collect();
        let (untracked_packets, untracked_bytes) = mnp_dataplane::flows::untracked(&self.flows);
        crate::flowsjson::Flows {
            now_ms: self.clock.now_ms(),
            total: all.len(),
            capacity: self.flows.iter().map(|t| t.capacity()).sum(),
            untracked_packets,
            untracked_bytes,
            flows: crate::flowsjson::top(all, sort, top),
        }
    }

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
        let lat = latency_summary(&self.latency.lock().unwrap_or_else(|e| e.into_inner()));
        let untracked =
            (!self.flows.is_empty()).then(|| mnp_dataplane::flows::untracked(&self.flows).0);
        metrics::render(&workers, &view, &lat, untracked)
    }
}

/// Connections served at once; more wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 64;
/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection, idle or not, is kept longer than this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve the endpoint until `stop` is set: hyper's HTTP/1.1 on a
/// single-threaded tokio runtime of its own, connections concurrently (an
/// idle or slow client never delays another's scrape), at most
/// [`MAX_CONNECTIONS`] at once, each bounded in time.
pub fn serve(listener: TcpListener, stop: Arc<AtomicBool>, state: Arc<HttpState>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("metrics endpoint: cannot start its runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|_| tokio::net::TcpListener::from_std(listener))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("metrics endpoint: {e}");
                return;
            }
        };
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        // Wait in short slices so `stop` is noticed (both waits are
        // cancel-safe: a cancelled accept loses no connection).
        let slice = Duration::from_millis(50);
        while !stop.load(Ordering::Relaxed) {
            let permit = match tokio::time::timeout(slice, permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return,
                Err(_) => continue,
            };
            let stream = match tokio::time::timeout(slice, listener.accept()).await {
                Ok(Ok((s, _))) => s,
                _ => continue,
            };
            let state = state.clone();
            tokio::task::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move {
                        let resp = if req.uri().path() == "/trace" && req.method() == "GET" {
                            trace(req.uri().query().unwrap_or(""), &state).await
                        } else {
                            respond(&req, &state)
                        };
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
                drop(permit);
            });
        }
    });
}

type Body = http_body_util::Full<hyper::body::Bytes>;

/// Longest a trace waits for its packets (below the connection's limit).
pub const TRACE_TIMEOUT_MAX: Duration = Duration::from_secs(25);

fn param(query: &str, k: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(str::to_string))
}

fn response(status: u16, ctype: &str, body: String) -> hyper::Response<Body> {
    let mut resp = hyper::Response::new(Body::new(body.into()));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// `GET /trace`: arm the tap for `count` packets matching `filter`, wait
/// until they are judged or `timeout` seconds pass, answer with a JSON
/// array of what was traced (possibly fewer than asked).
async fn trace(query: &str, state: &HttpState) -> hyper::Response<Body> {
    use mnp_dataplane::trace::{TraceFilter, TRACE_QUEUE};
    let count = param(query, "count")
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(10)
        .clamp(1, TRACE_QUEUE as u32);
    let filter = match param(query, "filter").map(|f| TraceFilter::parse(&f)) {
        None => TraceFilter::All,
        Some(Ok(f)) => f,
        Some(Err(e)) => return response(400, "text/plain", format!("filter: {e}\n")),
    };
    let timeout = param(query, "timeout")
        .and_then(|t| t.parse::<f64>().ok())
        .map_or(Duration::from_secs(10), Duration::from_secs_f64)
        .min(TRACE_TIMEOUT_MAX);
    let _one = state.tracing.lock().await;
    state.trace.arm(count, filter);
    let deadline = tokio::time::Instant::now() + timeout;
    while state.trace.remaining() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    state.trace.disarm();
    // Packets claimed in the last burst reach the queue once it is sent.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let records = state.trace.take();
    let labels: Vec<String> = state
        .workers
        .iter()
        .map(|(p, q, _)| format!("{p}/{q}"))
        .collect();
    let g = crossbeam::epoch::pin();
    let snap = state.cell.load(&g);
    let traced: Vec<crate::trace::Traced> = records
        .iter()
        .map(|r| crate::trace::Traced::from_record(r, &labels, snap))
        .collect();
    match serde_json::to_string_pretty(&traced) {
        Ok(body) => response(200, "application/json", body + "\n"),
        Err(e) => response(500, "text/plain", format!("{e}\n")),
    }
}

fn respond(
    req: &hyper::Request<hyper::body::Incoming>,
    state: &HttpState,
) -> hyper::Response<Body> {
    let query = req.uri().query().unwrap_or("");
    let param = |k: &str| param(query, k);
    let (status, ctype, body) = match (req.method().as_str(), req.uri().path()) {
        ("GET", "/metrics") => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics(),
        ),
        ("GET", "/healthz") => (200, "text/plain", "ok\n".to_string()),
        ("GET", "/flows") => {
            let top = param("top")
                .and_then(|t| t.parse::<usize>().ok())
                .unwrap_or(20);
            let sort = param("sort").unwrap_or_else(|| "packets".into());
            if !crate::flowsjson::SORTS.contains(&sort.as_str()) {
                (
                    400,
                    "text/plain",
                    format!("sort by one of {:?}\n", crate::flowsjson::SORTS),
                )
            } else {
                match serde_json::to_string_pretty(&state.flows(top, &sort)) {
                    Ok(j) => (200, "application/json", j + "\n"),
                    Err(e) => (500, "text/plain", format!("{e}\n")),
                }
            }
        }
        ("GET", "/stats") => match serde_json::to_string_pretty(&state.stats()) {
            Ok(j) => (200, "application/json", j + "\n"),
            Err(e) => (500, "text/plain", format!("{e}\n")),
        },
        ("GET", "/why") => match param("frame").map(|h| hex::decode(h.trim())) {
            Some(Ok(frame)) => {
                let now_ms = param("now")
                    .and_then(|n| n.parse::<u64>().ok())
                    .map_or_else(|| state.clock.now_ms(), |s| s * 1000);
                let g = crossbeam::epoch::pin();
                let why = decode::why(&frame, state.cell.load(&g), now_ms, Some(&state.replay));
                if param("format").as_deref() == Some("json") {
                    match serde_json::to_string_pretty(&why) {
                        Ok(j) => (200, "application/json", j + "\n"),
                        Err(e) => (500, "text/plain", format!("{e}\n")),
                    }
                } else {
                    (200, "text/plain; charset=utf-8", why.text)
                }
            }
            _ => (400, "text/plain", "give ?frame=HEX\n".to_string()),
        },
        ("GET", _) => (
            404,
            "text/plain",
            "try /metrics, /stats, /flows, /healthz, /why?frame=HEX or /trace?count=N\n"
                .to_string(),
        ),
        _ => (405, "text/plain", "GET only\n".to_string()),
    };
    response(status, ctype, body.to_string())
}

/// A minimal client: GET `path` from `addr`, return the body.
pub fn get(addr: &str, path: &str) -> Result<String, String> {
    get_within(addr, path, Duration::from_secs(5))
}

/// [`get`], waiting up to `timeout` for the answer.
pub fn get_within(addr: &str, path: &str, timeout: Duration) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
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

/// The burst-latency histogram (ns) as the metrics and the exit summary
/// report it: quantiles, count and sum, in seconds.
pub(crate) fn latency_summary(h: &hdrhistogram::Histogram<u64>) -> LatencySummary {
    LatencySummary {
        quantiles: [0.5, 0.9, 0.99, 0.999]
            .iter()
            .map(|q| (*q, h.value_at_quantile(*q) as f64 / 1e9))
            .collect(),
        count: h.len(),
        sum_seconds: h.mean() * h.len() as f64 / 1e9,
    }
}

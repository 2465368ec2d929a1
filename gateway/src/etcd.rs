//! The few etcd v3 calls the fleet needs, over etcd's own JSON gateway
//! (`POST /v3/kv/range`, `/v3/kv/put`, `/v3/watch`, `/v3/lease/*` on the
//! client port, served by etcd 3.4 and later).
//!
//! Why not the gRPC client crate: `etcd-client` compiles etcd's `.proto`
//! files in its build script and so needs `protoc` on the build machine,
//! which broke `cargo run --release -- demo` on a fresh Debian box (and
//! added a gRPC stack, about two minutes of build, for six calls). The JSON
//! gateway is etcd's documented HTTP face of the same RPCs: bytes fields
//! are base64, 64-bit integers are strings in responses, fields at their
//! default value are left out, and a streaming RPC answers one
//! `{"result": …}` (or `{"error": …}`) object per line.
//!
//! Plain HTTP only: the gateway has no TLS client. Reach etcd over a
//! management network or a local TLS tunnel (docs/fleet.md).
//!
//! Nothing here runs on the packet path or the control thread: the fleet
//! thread and the `fleet` CLI verbs use it on their own tokio runtime.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::time::Duration;

/// The most a unary answer or one watch line may hold: a bundle is a few
/// kilobytes; a store that sends more is refused, not buffered.
const MAX_BODY: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Url(String),
    #[error("{endpoint}: {what}")]
    Io { endpoint: String, what: String },
    #[error("{endpoint}: timed out after {after:?}")]
    Timeout { endpoint: String, after: Duration },
    #[error("{endpoint}{path}: HTTP {status}: {body}")]
    Status {
        endpoint: String,
        path: &'static str,
        status: u16,
        body: String,
    },
    #[error("{endpoint}{path}: {what}")]
    Answer {
        endpoint: String,
        path: &'static str,
        what: String,
    },
    #[error("no etcd endpoint reachable: {0}")]
    Unreachable(String),
}

/// `http://HOST:PORT` → `HOST:PORT`, by the config's own rule.
fn authority(url: &str) -> Result<String, Error> {
    mnp_ctrl::compile::etcd_host_port(url)
        .map(str::to_string)
        .map_err(Error::Url)
}

/// One key and its value as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// A range read: the keys and the store's revision it was read at.
#[derive(Debug, Clone)]
pub struct Range {
    pub revision: i64,
    pub kvs: Vec<Kv>,
}

/// What a watch reports: a key written (deletes are not reported; the
/// fleet ignores them, as a gateway keeps its last good policy).
#[derive(Debug, Clone, PartialEq)]
pub struct Put {
    pub kv: Kv,
}

/// The end of a prefix range: the prefix with its last byte below 0xff
/// incremented (etcd's rule for `--prefix`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// A response's int64: a string in the gateway's JSON, absent when 0.
fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn bytes_field(v: &Value, what: &str) -> Result<Vec<u8>, String> {
    match v {
        Value::Null => Ok(Vec::new()), // an empty value is left out
        Value::String(s) => B64.decode(s).map_err(|e| format!("{what}: {e}")),
        _ => Err(format!("{what}: not a base64 string")),
    }
}

fn kv(v: &Value) -> Result<Kv, String> {
    Ok(Kv {
        key: bytes_field(&v["key"], "key")?,
        value: bytes_field(&v["value"], "value")?,
    })
}

/// A client of one cluster: tries the endpoints in turn and keeps one
/// HTTP/1.1 connection, to the first that answers, for unary calls.
pub struct Client {
    endpoints: Vec<String>,
    connect_timeout: Duration,
    timeout: Duration,
    /// The endpoint last connected to (tried first next time).
    current: usize,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    /// Check the URLs and connect to the first endpoint that accepts.
    pub async fn connect(
        endpoints: &[String],
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Client, Error> {
        if endpoints.is_empty() {
            return Err(Error::Unreachable("no endpoint given".into()));
        }
        for u in endpoints {
            authority(u)?;
        }
        let mut c = Client {
            endpoints: endpoints.to_vec(),
            connect_timeout,
            timeout,
            current: 0,
            conn: None,
        };
        c.connection().await?;
        Ok(c)
    }

    /// The endpoint the kept connection goes to.
    pub fn endpoint(&self) -> &str {
        &self.endpoints[self.current]
    }

    /// A new HTTP/1.1 connection to `endpoints[i]`; its driver runs on the
    /// current runtime until the connection closes.
    async fn open(&self, i: usize) -> Result<SendRequest<Full<Bytes>>, Error> {
        let endpoint = &self.endpoints[i];
        let addr = authority(endpoint)?;
        let io = |what: String| Error::Io {
            endpoint: endpoint.clone(),
            what,
        };
        let tcp = tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(&addr))
            .await
            .map_err(|_| Error::Timeout {
                endpoint: endpoint.clone(),
                after: self.connect_timeout,
            })?
            .map_err(|e| io(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| io(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(send)
    }

    /// Make sure a live connection is kept: the current endpoint first,
    /// then the others in order.
    async fn connection(&mut self) -> Result<(), Error> {
        if self.conn.as_ref().is_some_and(|s| !s.is_closed()) {
            return Ok(());
        }
        self.conn = None;
        let n = self.endpoints.len();
        let mut why = Vec::new();
        for k in 0..n {
            let i = (self.current + k) % n;
            match self.open(i).await {
                Ok(s) => {
                    self.current = i;
                    self.conn = Some(s);
                    return Ok(());
                }
                Err(e) => why.push(e.to_string()),
            }
        }
        Err(Error::Unreachable(why.join("; ")))
    }

    /// A unary call: POST `body` to `path`, read the whole (bounded)
    /// answer, parse it. A failed call drops its connection, so the next
    /// call connects again (to another endpoint if this one is gone).
    async fn call(&mut self, path: &'static str, body: Value) -> Result<Value, Error> {
        self.connection().await?;
        let endpoint = self.endpoints[self.current].clone();
        let Some(send) = self.conn.as_mut() else {
            return Err(Error::Unreachable(endpoint));
        };
        let r = tokio::time::timeout(self.timeout, async {
            let resp = post(send, &endpoint, path, &body).await?;
            let status = resp.status().as_u16();
            let bytes = read_all(resp.into_body(), &endpoint).await?;
            if status != 200 {
                return Err(Error::Status {
                    endpoint: endpoint.clone(),
                    path,
                    status,
                    body: String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned(),
                });
            }
            // A streaming RPC's answer is one `{"result": …}` per line.
            let first = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
            let v: Value = serde_json::from_slice(first).map_err(|e| Error::Answer {
                endpoint: endpoint.clone(),
                path,
                what: format!("not JSON: {e}"),
            })?;
            answer(v, &endpoint, path)
        })
        .await;
        let r = r.unwrap_or_else(|_| {
            Err(Error::Timeout {
                endpoint: endpoint.clone(),
                after: self.timeout,
            })
        });
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    /// The value at `key`, if any, and the store's revision.
    pub async fn get(&mut self, key: &str) -> Result<Range, Error> {
        self.range(json!({ "key": b64(key.as_bytes()) }), "/v3/kv/range")
            .await
    }

    /// Every key under `prefix`, and the store's revision.
    pub async fn get_prefix(&mut self, prefix: &str) -> Result<Range, Error> {
        let p = prefix.as_bytes();
        self.range(
            json!({ "key": b64(p), "range_end": b64(&prefix_end(p)) }),
            "/v3/kv/range",
        )
        .await
    }

    async fn range(&mut self, req: Value, path: &'static str) -> Result<Range, Error> {
        let v = self.call(path, req).await?;
        let endpoint = self.endpoint().to_string();
        let kvs = match &v["kvs"] {
            Value::Null => Vec::new(),
            Value::Array(a) => {
                a.iter()
                    .map(kv)
                    .collect::<Result<_, _>>()
                    .map_err(|what| Error::Answer {
                        endpoint,
                        path,
                        what,
                    })?
            }
            _ => {
                return Err(Error::Answer {
                    endpoint,
                    path,
                    what: "kvs is not a list".into(),
                })
            }
        };
        Ok(Range {
            revision: int(&v["header"]["revision"]),
            kvs,
        })
    }

    /// Write `value` at `key`, on `lease` if given (the key goes with it).
    pub async fn put(&mut self, key: &str, value: &[u8], lease: Option<i64>) -> Result<(), Error> {
        let mut req = json!({ "key": b64(key.as_bytes()), "value": b64(value) });
        if let Some(l) = lease {
            req["lease"] = Value::String(l.to_string());
        }
        self.call("/v3/kv/put", req).await.map(|_| ())
    }

    /// A lease of `ttl_s` seconds; its id.
    pub async fn lease_grant(&mut self, ttl_s: i64) -> Result<i64, Error> {
        let path = "/v3/lease/grant";
        let v = self.call(path, json!({ "TTL": ttl_s.to_string() })).await?;
        match int(&v["ID"]) {
            0 => Err(Error::Answer {
                endpoint: self.endpoint().to_string(),
                path,
                what: "no lease ID in the answer".into(),
            }),
            id => Ok(id),
        }
    }

    /// Renew `lease`; its remaining time to live. An expired lease is an
    /// error (its keys are gone: the caller must start over).
    pub async fn lease_keep_alive(&mut self, lease: i64) -> Result<i64, Error> {
        let path = "/v3/lease/keepalive";
        let v = self.call(path, json!({ "ID": lease.to_string() })).await?;
        match int(&v["TTL"]) {
            ttl if ttl > 0 => Ok(ttl),
            _ => Err(Error::Answer {
                endpoint: self.endpoint().to_string(),
                path,
                what: format!("lease {lease:x} expired"),
            }),
        }
    }

    /// End `lease` now, and with it its keys.
    pub async fn lease_revoke(&mut self, lease: i64) -> Result<(), Error> {
        self.call("/v3/lease/revoke", json!({ "ID": lease.to_string() }))
            .await
            .map(|_| ())
    }

    /// Watch every key under `prefix` from `start_revision` on, on a
    /// connection of its own.
    pub async fn watch_prefix(
        &mut self,
        prefix: &str,
        start_revision: i64,
    ) -> Result<Watch, Error> {
        let path = "/v3/watch";
        let endpoint = self.endpoint().to_string();
        let mut send = self.open(self.current).await?;
        let p = prefix.as_bytes();
        let req = json!({ "create_request": {
            "key": b64(p),
            "range_end": b64(&prefix_end(p)),
            "start_revision": start_revision.to_string(),
        }});
        let resp = tokio::time::timeout(self.timeout, post(&mut send, &endpoint, path, &req))
            .await
            .map_err(|_| Error::Timeout {
                endpoint: endpoint.clone(),
                after: self.timeout,
            })??;
        let status = resp.status().as_u16();
        if status != 200 {
            let body = read_all(resp.into_body(), &endpoint)
                .await
                .unwrap_or_default();
            return Err(Error::Status {
                endpoint,
                path,
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            });
        }
        Ok(Watch {
            _send: send,
            body: resp.into_body(),
            buf: Vec::new(),
            endpoint,
        })
    }
}

/// POST `body` to `path` on `send`.
async fn post(
    send: &mut SendRequest<Full<Bytes>>,
    endpoint: &str,
    path: &'static str,
    body: &Value,
) -> Result<hyper::Response<hyper::body::Incoming>, Error> {
    let io = |what: String| Error::Io {
        endpoint: endpoint.to_string(),
        what,
    };
    send.ready().await.map_err(|e| io(e.to_string()))?;
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, authority(endpoint)?)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| io(e.to_string()))?;
    send.send_request(req).await.map_err(|e| io(e.to_string()))
}

/// A whole response body, at most [`MAX_BODY`] bytes.
async fn read_all(mut body: hyper::body::Incoming, endpoint: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::Io {
            endpoint: endpoint.to_string(),
            what: e.to_string(),
        })?;
        if let Some(d) = frame.data_ref() {
            if out.len() + d.len() > MAX_BODY {
                return Err(Error::Io {
                    endpoint: endpoint.to_string(),
                    what: format!("answer over {MAX_BODY} bytes"),
                });
            }
            out.extend_from_slice(d);
        }
    }
    Ok(out)
}

/// The message inside an answer: `{"result": m}` for a streaming RPC, the
/// object itself for a unary one; `{"error": …}` is an error.
fn answer(v: Value, endpoint: &str, path: &'static str) -> Result<Value, Error> {
    if let Some(e) = v.get("error") {
        let what = e
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string());
        return Err(Error::Answer {
            endpoint: endpoint.to_string(),
            path,
            what,
        });
    }
    Ok(match v {
        Value::Object(mut m) if m.contains_key("result") => m.remove("result").unwrap_or_default(),
        v => v,
    })
}

/// A watch's stream of answers.
pub struct Watch {
    /// Keeps the watch's connection open.
    _send: SendRequest<Full<Bytes>>,
    body: hyper::body::Incoming,
    buf: Vec<u8>,
    endpoint: String,
}

impl Watch {
    /// The keys written in the next answer (none for the answer that
    /// confirms the watch, or a progress note). A cancelled watch (the
    /// start revision compacted away, say) or a closed stream is an error:
    /// the caller reads the store again and watches anew.
    pub async fn next(&mut self) -> Result<Vec<Put>, Error> {
        let path = "/v3/watch";
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let bad = |what: String| Error::Answer {
                    endpoint: self.endpoint.clone(),
                    path,
                    what,
                };
                let v: Value =
                    serde_json::from_slice(&line).map_err(|e| bad(format!("not JSON: {e}")))?;
                let m = answer(v, &self.endpoint, path)?;
                if m["canceled"].as_bool() == Some(true) {
                    let why = m["cancel_reason"].as_str().unwrap_or("");
                    return Err(bad(format!(
                        "watch cancelled (compact revision {}) {why}",
                        int(&m["compact_revision"])
                    )));
                }
                let mut puts = Vec::new();
                if let Value::Array(events) = &m["events"] {
                    for e in events {
                        // PUT is the enum's default, so the gateway leaves it out.
                        if e["type"].is_null() || e["type"] == "PUT" {
                            puts.push(Put {
                                kv: kv(&e["kv"]).map_err(bad)?,
                            });
                        }
                    }
                }
                return Ok(puts);
            }
            let io = |what: String| Error::Io {
                endpoint: self.endpoint.clone(),
                what,
            };
            match self.body.frame().await {
                None => return Err(io("watch closed by the store".into())),
                Some(Err(e)) => return Err(io(e.to_string())),
                Some(Ok(frame)) => {
                    if let Some(d) = frame.data_ref() {
                        if self.buf.len() + d.len() > MAX_BODY {
                            return Err(io(format!("watch answer over {MAX_BODY} bytes")));
                        }
                        self.buf.extend_from_slice(d);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(authority("http://10.0.0.1:2379").unwrap(), "10.0.0.1:2379");
        assert_eq!(authority("http://[::1]:2379/").unwrap(), "[::1]:2379");
        assert_eq!(
            authority("http://etcd-1.mgmt:2379").unwrap(),
            "etcd-1.mgmt:2379"
        );
        for bad in [
            "https://10.0.0.1:2379",
            "10.0.0.1:2379",
            "http://10.0.0.1",
            "http://10.0.0.1:port",
            "http://:2379",
            "http://10.0.0.1:2379/v3",
            "http://user@10.0.0.1:2379",
            "http://",
        ] {
            assert!(authority(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefix_ends_as_etcd_computes_them() {
        assert_eq!(prefix_end(b"/mnp/"), b"/mnp0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn answers() {
        // Unary, streaming, error, and the int64-as-string convention.
        let v = answer(json!({"header": {"revision": "42"}}), "e", "/p").unwrap();
        assert_eq!(int(&v["header"]["revision"]), 42);
        let v = answer(json!({"result": {"ID": "7", "TTL": "5"}}), "e", "/p").unwrap();
        assert_eq!((int(&v["ID"]), int(&v["TTL"])), (7, 5));
        let e = answer(
            json!({"error": {"grpc_code": 5, "message": "requested lease not found"}}),
            "e",
            "/p",
        );
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("requested lease not found"));
        assert_eq!(int(&Value::Null), 0);
        let k = kv(&json!({"key": b64(b"/mnp/x"), "value": b64(b"{}")})).unwrap();
        assert_eq!(
            (k.key.as_slice(), k.value.as_slice()),
            (&b"/mnp/x"[..], &b"{}"[..])
        );
        assert!(kv(&json!({"key": "not base64!"})).is_err());
    }
}

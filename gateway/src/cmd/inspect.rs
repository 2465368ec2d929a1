//! Looking at packets: `decode` (outer headers, governance fields, verdicts)
//! and `why` (every check with the values it compared, against a config or
//! a running gateway's live state).

use crate::{decode, http};
use crate::{fail, load};
use mnp_dataplane::port::pcap::Captured;
use mnp_dataplane::worker::Clock;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(crate) fn read_capture(path: &Path) -> Result<Vec<Captured>, String> {
    mnp_dataplane::port::pcap::read_capture(path).map_err(|e| e.to_string())
}

pub(crate) fn decode(
    hex_frame: Option<String>,
    pcap: Option<PathBuf>,
    config: Option<PathBuf>,
    now: Option<u32>,
    json: bool,
) -> ExitCode {
    let frames = match (hex_frame, pcap) {
        (Some(h), _) => match hex::decode(h.trim().replace([' ', ':', '\n'], "")) {
            Ok(data) => vec![Captured {
                data,
                comment: None,
                interface: None,
            }],
            Err(e) => return fail(2, format!("--hex: {e}")),
        },
        (None, Some(p)) => match read_capture(&p) {
            Ok(f) => f,
            Err(e) => return fail(1, e),
        },
        (None, None) => return fail(2, "give --hex FRAME or --pcap FILE"),
    };
    let loaded = match config.as_deref().map(load).transpose() {
        Ok(l) => l,
        Err(c) => return c,
    };
    let snap = loaded.as_ref().map_or_else(
        || mnp_dataplane::Snapshot::empty(0, mnp_dataplane::wire::DEFAULT_UDP_PORT),
        |l| l.snapshot.clone(),
    );
    let now = now.unwrap_or_else(|| Clock::System.now());
    let raw: Vec<Vec<u8>> = frames.iter().map(|c| c.data.clone()).collect();
    let verdicts = loaded.as_ref().map(|_| decode::verdicts(&raw, &snap, now));
    if json {
        let all: Vec<serde_json::Value> = frames
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut f = decode::fields(&c.data, &snap);
                if let serde_json::Value::Object(m) = &mut f {
                    m.insert("index".into(), i.into());
                    m.insert("interface".into(), c.interface.clone().into());
                    m.insert("comment".into(), c.comment.clone().into());
                    if let Some(v) = &verdicts {
                        m.insert(
                            "verdict".into(),
                            decode::verdict_line(&v[i].0, &snap).into(),
                        );
                    }
                }
                f
            })
            .collect();
        return match serde_json::to_string_pretty(&all) {
            Ok(j) => {
                outln!("{j}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(1, e.to_string()),
        };
    }
    for (i, c) in frames.iter().enumerate() {
        let mut text = format!(
            "#{i}\n{}",
            decode::describe(&c.data, &snap, loaded.as_ref())
        );
        if let Some(iface) = &c.interface {
            text += &format!("  captured on: {iface}\n");
        }
        if let Some(comment) = &c.comment {
            text += &format!("  capture comment: {comment}\n");
        }
        if let Some(v) = &verdicts {
            text += &format!("  verdict: {}\n", decode::verdict_line(&v[i].0, &snap));
        }
        // A closed pipe (`decode … | head`) ends the output quietly.
        if std::io::stdout().lock().write_all(text.as_bytes()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

pub(crate) fn frame_arg(
    hex_frame: Option<String>,
    pcap: Option<PathBuf>,
    index: Option<usize>,
) -> Result<Vec<u8>, ExitCode> {
    match (hex_frame, pcap) {
        (Some(h), _) => hex::decode(h.trim().replace([' ', ':', '\n'], ""))
            .map_err(|e| fail(2, format!("--hex: {e}"))),
        (None, Some(p)) => {
            let frames = read_capture(&p).map_err(|e| fail(1, e))?;
            let i = index.unwrap_or(0);
            frames
                .into_iter()
                .nth(i)
                .map(|c| c.data)
                .ok_or_else(|| fail(2, format!("{}: no frame at index {i}", p.display())))
        }
        (None, None) => Err(fail(2, "give --hex FRAME or --pcap FILE --index N")),
    }
}

pub(crate) fn why(
    hex_frame: Option<String>,
    pcap: Option<PathBuf>,
    index: Option<usize>,
    config: Option<PathBuf>,
    endpoint: Option<String>,
    now: Option<u32>,
    json: bool,
) -> ExitCode {
    let frame = match frame_arg(hex_frame, pcap, index) {
        Ok(f) => f,
        Err(c) => return c,
    };
    let judged = match (config, endpoint) {
        (Some(c), _) => match load(&c) {
            Ok(l) => decode::why(
                &frame,
                &l.snapshot,
                now.map_or_else(|| Clock::System.now_ms(), |s| s as u64 * 1000),
                None,
            ),
            Err(code) => return code,
        },
        (None, Some(ep)) => {
            let q = now.map_or(String::new(), |n| format!("&now={n}"));
            let path = format!("/why?frame={}{q}", hex::encode(&frame));
            if json {
                let body = match http::get(&ep, &format!("{path}&format=json")) {
                    Ok(b) => b,
                    Err(e) => return fail(1, e),
                };
                out!("{body}");
                let dropped = serde_json::from_str::<decode::Why>(&body).is_ok_and(|w| w.dropped);
                return if dropped {
                    ExitCode::from(WHY_DROP)
                } else {
                    ExitCode::SUCCESS
                };
            }
            match http::get(&ep, &path) {
                Ok(text) => {
                    out!("{text}");
                    return if text.lines().any(|l| l.starts_with("verdict: DROP")) {
                        ExitCode::from(WHY_DROP)
                    } else {
                        ExitCode::SUCCESS
                    };
                }
                Err(e) => return fail(1, e),
            }
        }
        (None, None) => return fail(2, "give --config FILE or --endpoint ADDR"),
    };
    if json {
        match serde_json::to_string_pretty(&judged) {
            Ok(j) => outln!("{j}"),
            Err(e) => return fail(1, e.to_string()),
        }
    } else {
        out!("{}", judged.text);
    }
    if judged.dropped {
        ExitCode::from(WHY_DROP)
    } else {
        ExitCode::SUCCESS
    }
}

/// `why`'s exit status for a DROP verdict (0: forwarded or local; 1 and 2:
/// errors, as for every verb).
pub(crate) const WHY_DROP: u8 = 3;

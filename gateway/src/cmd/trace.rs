//! `trace`: the next packets a running gateway judges (its `GET /trace`),
//! as text, JSON, or a pcapng file with each verdict as a comment.

use crate::trace::Traced;
use crate::{fail, http};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

pub(crate) fn trace(
    endpoint: &str,
    count: u32,
    filter: Option<&str>,
    timeout: f64,
    pcap: Option<&Path>,
    json: bool,
) -> ExitCode {
    if let Some(f) = filter {
        if let Err(e) = mnp_dataplane::trace::TraceFilter::parse(f) {
            return fail(2, format!("--filter: {e}"));
        }
    }
    let timeout = timeout.clamp(0.0, http::TRACE_TIMEOUT_MAX.as_secs_f64());
    let mut path = format!("/trace?count={count}&timeout={timeout}");
    if let Some(f) = filter {
        path.push_str(&format!("&filter={f}"));
    }
    let body = match http::get_within(
        endpoint,
        &path,
        Duration::from_secs_f64(timeout) + Duration::from_secs(5),
    ) {
        Ok(b) => b,
        Err(e) => return fail(1, e),
    };
    let traced: Vec<Traced> = match serde_json::from_str(&body) {
        Ok(t) => t,
        Err(e) => return fail(1, format!("{endpoint}: not a trace: {e}")),
    };
    if let Some(p) = pcap {
        if let Err(e) = write_pcapng(p, &traced) {
            return fail(1, format!("{}: {e}", p.display()));
        }
    }
    if json {
        out!("{body}");
    } else {
        for (n, t) in traced.iter().enumerate() {
            outln!("{}", t.text(n + 1));
        }
        if (traced.len() as u32) < count {
            outln!(
                "({} of {count} packets traced within {timeout} s)",
                traced.len()
            );
        }
    }
    ExitCode::SUCCESS
}

/// The traced frames (their first 256 bytes; the original length kept) in
/// pcapng, each with its verdict as packet comments.
fn write_pcapng(path: &Path, traced: &[Traced]) -> Result<(), String> {
    use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::DataLink;
    let f = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut w = PcapNgWriter::new(std::io::BufWriter::new(f)).map_err(|e| e.to_string())?;
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![],
    })
    .map_err(|e| e.to_string())?;
    for t in traced {
        let data = hex::decode(&t.frame).map_err(|e| e.to_string())?;
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_millis(t.at_ms),
            original_len: t.len,
            data: data.into(),
            options: t
                .comments()
                .into_iter()
                .map(|c| EnhancedPacketOption::Comment(c.into()))
                .collect(),
        };
        w.write_pcapng_block(block).map_err(|e| e.to_string())?;
    }
    Ok(())
}

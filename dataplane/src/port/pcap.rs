//! pcap file ports: a capture played as rx, one classic pcap per egress port
//! for tx, and a pcapng file of drops whose packet comments name the reason
//! (Wireshark and tshark show them as `frame.comment`).
//!
//! Writers are shared by the workers that send to the same file; tx takes
//! the lock once per burst. The drop sink takes it once per captured packet,
//! which the worker samples.

use super::{BufPool, DropSink, PktBuf, RxQueue, RxStatus, TxQueue};
use crate::drop::DropReason;
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum PcapPortError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Pcap {
        path: String,
        source: pcap_file::PcapError,
    },
    #[error("{path}: link type {linktype:?} is not Ethernet")]
    LinkType { path: String, linktype: DataLink },
}

/// Read every frame of a classic pcap (Ethernet link type) into memory.
pub fn read_frames(path: &Path) -> Result<Vec<Vec<u8>>, PcapPortError> {
    let p = path.display().to_string();
    let f = File::open(path).map_err(|source| PcapPortError::Io {
        path: p.clone(),
        source,
    })?;
    let mut r =
        PcapReader::new(std::io::BufReader::new(f)).map_err(|source| PcapPortError::Pcap {
            path: p.clone(),
            source,
        })?;
    let lt = r.header().datalink;
    if lt != DataLink::ETHERNET {
        return Err(PcapPortError::LinkType {
            path: p,
            linktype: lt,
        });
    }
    let mut out = Vec::new();
    while let Some(pkt) = r.next_packet() {
        let pkt = pkt.map_err(|source| PcapPortError::Pcap {
            path: p.clone(),
            source,
        })?;
        out.push(pkt.data.into_owned());
    }
    Ok(out)
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Plays a pcap's frames, once or in a loop (like net_pcap's `infinite_rx`).
/// Frames are loaded at open so the rx path makes no syscall.
pub struct PcapRx {
    frames: Arc<Vec<Vec<u8>>>,
    next: usize,
    repeat: bool,
    errors: u64,
}

impl PcapRx {
    pub fn open(path: &Path, repeat: bool) -> Result<Self, PcapPortError> {
        Ok(Self::from_frames(Arc::new(read_frames(path)?), repeat))
    }
    pub fn from_frames(frames: Arc<Vec<Vec<u8>>>, repeat: bool) -> Self {
        Self {
            frames,
            next: 0,
            repeat,
            errors: 0,
        }
    }
}

impl RxQueue for PcapRx {
    fn rx_burst(&mut self, pool: &mut BufPool, out: &mut Vec<PktBuf>, max: usize) -> RxStatus {
        for _ in 0..max {
            if self.next == self.frames.len() {
                if !self.repeat || self.frames.is_empty() {
                    return RxStatus::Exhausted;
                }
                self.next = 0;
            }
            let Some(mut b) = pool.get() else {
                return RxStatus::Open;
            };
            if b.fill(&self.frames[self.next]) {
                out.push(b);
            } else {
                self.errors += 1;
                pool.put(b);
            }
            self.next += 1;
        }
        if !self.repeat && self.next == self.frames.len() {
            RxStatus::Exhausted
        } else {
            RxStatus::Open
        }
    }
    fn rx_errors(&self) -> u64 {
        self.errors
    }
}

/// A classic pcap writer shared by every worker that transmits on one port.
#[derive(Clone)]
pub struct PcapTx {
    w: Arc<Mutex<PcapWriter<BufWriter<File>>>>,
}

impl PcapTx {
    pub fn create(path: &Path) -> Result<Self, PcapPortError> {
        let p = path.display().to_string();
        let f = File::create(path).map_err(|source| PcapPortError::Io {
            path: p.clone(),
            source,
        })?;
        let w = PcapWriter::new(BufWriter::new(f))
            .map_err(|source| PcapPortError::Pcap { path: p, source })?;
        Ok(Self {
            w: Arc::new(Mutex::new(w)),
        })
    }
}

impl TxQueue for PcapTx {
    fn tx_burst(&mut self, pkts: &[PktBuf]) -> usize {
        let ts = now();
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        for (i, p) in pkts.iter().enumerate() {
            let d = p.as_ref();
            if w.write_packet(&PcapPacket::new(ts, d.len() as u32, d))
                .is_err()
            {
                return i;
            }
        }
        pkts.len()
    }
    // No `flush`: pcap-file's writer does not lend out its inner writer, so
    // the buffered tail is written when the last worker holding this port
    // drops it (BufWriter flushes on drop). The daemon joins its workers
    // before it reports, so files are complete when `run` returns.
}

/// Dropped packets to pcapng, each with a comment `drop: <name> (<code>)`,
/// as a ring of files: when `path` exceeds `max_bytes` it becomes `path.1`
/// (`path.1` becomes `path.2`, …, up to `files - 1`) and a new `path` starts.
#[derive(Clone)]
pub struct PcapDropSink {
    ring: Arc<Mutex<Ring>>,
}

struct Ring {
    w: Option<PcapNgWriter<BufWriter<File>>>,
    path: std::path::PathBuf,
    written: u64,
    max_bytes: u64,
    files: u32,
}

fn open_ng(path: &Path) -> Result<PcapNgWriter<BufWriter<File>>, PcapPortError> {
    let p = path.display().to_string();
    let f = File::create(path).map_err(|source| PcapPortError::Io {
        path: p.clone(),
        source,
    })?;
    let mut w = PcapNgWriter::new(BufWriter::new(f)).map_err(|source| PcapPortError::Pcap {
        path: p.clone(),
        source,
    })?;
    let idb = InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0xffff,
        options: vec![],
    };
    w.write_pcapng_block(idb)
        .map_err(|source| PcapPortError::Pcap { path: p, source })?;
    Ok(w)
}

impl PcapDropSink {
    /// A single file without rotation.
    pub fn create(path: &Path) -> Result<Self, PcapPortError> {
        Self::ring(path, u64::MAX, 1)
    }

    /// A ring of `files` files of about `max_bytes` each.
    pub fn ring(path: &Path, max_bytes: u64, files: u32) -> Result<Self, PcapPortError> {
        let w = open_ng(path)?;
        Ok(Self {
            ring: Arc::new(Mutex::new(Ring {
                w: Some(w),
                path: path.to_path_buf(),
                written: 0,
                max_bytes,
                files: files.max(1),
            })),
        })
    }
}

impl Ring {
    fn rotate(&mut self) {
        if let Some(w) = self.w.take() {
            let _ = w.into_inner().flush();
        }
        let name = |i: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            std::path::PathBuf::from(p)
        };
        if self.files > 1 {
            for i in (1..self.files - 1).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            let _ = std::fs::rename(&self.path, name(1));
        }
        self.w = open_ng(&self.path).ok();
        self.written = 0;
    }
}

/// The comment a drop capture carries, parsed back by `decode`.
pub fn drop_comment(r: DropReason) -> String {
    format!("drop: {} ({})", r.name(), r.code())
}

impl DropSink for PcapDropSink {
    fn capture(&mut self, frame: &[u8], reason: DropReason) {
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: now(),
            original_len: frame.len() as u32,
            data: Cow::Borrowed(frame),
            options: vec![EnhancedPacketOption::Comment(Cow::Owned(drop_comment(
                reason,
            )))],
        };
        let mut r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if r.written >= r.max_bytes {
            r.rotate();
        }
        if let Some(w) = r.w.as_mut() {
            if let Ok(n) = w.write_pcapng_block(block) {
                r.written += n as u64;
            }
        }
    }
    fn flush(&mut self) {
        let mut r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = r.w.as_mut() {
            let _ = w.get_mut().flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_ring_rotates_and_keeps_at_most_n_files() {
        let dir = mnp_testkit::tempdir("ring");
        let path = dir.join("drops.pcapng");
        let mut sink = PcapDropSink::ring(&path, 1000, 3).unwrap();
        for _ in 0..100 {
            sink.capture(&[0u8; 100], DropReason::BadMac);
        }
        sink.flush();
        drop(sink);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["drops.pcapng", "drops.pcapng.1", "drops.pcapng.2"]);
        for n in &names {
            let len = std::fs::metadata(dir.join(n)).unwrap().len();
            assert!(len < 1400, "{n}: {len}");
        }
    }
}

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
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
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

/// One packet of a capture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub data: Vec<u8>,
    /// The pcapng packet comment (a drop capture's reason), if any.
    pub comment: Option<String>,
    /// The pcapng interface's name (a drop capture's `port/queue`), if any.
    pub interface: Option<String>,
}

/// A record cut short at the end of the file: the file is still being
/// written (a live drop capture), so everything before it is complete.
fn is_partial_tail(e: &pcap_file::PcapError) -> bool {
    match e {
        pcap_file::PcapError::IncompleteBuffer => true,
        pcap_file::PcapError::IoError(io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
        _ => false,
    }
}

/// Read every packet of a classic pcap or a pcapng file (Ethernet link
/// type) into memory. A partial last record — a file still being written —
/// ends the list quietly; anything else malformed is an error.
pub fn read_capture(path: &Path) -> Result<Vec<Captured>, PcapPortError> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| PcapPortError::Io {
        path: p.clone(),
        source,
    })?;
    let pcap_err = |source| PcapPortError::Pcap {
        path: p.clone(),
        source,
    };
    let mut out = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = PcapNgReader::new(&bytes[..]).map_err(pcap_err)?;
        let mut names: Vec<Option<String>> = Vec::new();
        while let Some(block) = r.next_block() {
            let block = match block {
                Ok(b) => b,
                Err(e) if is_partial_tail(&e) => break,
                Err(e) => return Err(pcap_err(e)),
            };
            match block {
                Block::SectionHeader(_) => names.clear(),
                Block::InterfaceDescription(idb) => {
                    if idb.linktype != DataLink::ETHERNET {
                        return Err(PcapPortError::LinkType {
                            path: p.clone(),
                            linktype: idb.linktype,
                        });
                    }
                    names.push(idb.options.iter().find_map(|o| match o {
                        InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                        _ => None,
                    }));
                }
                Block::EnhancedPacket(pkt) => out.push(Captured {
                    comment: pkt.options.iter().find_map(|o| match o {
                        EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                        _ => None,
                    }),
                    interface: names.get(pkt.interface_id as usize).cloned().flatten(),
                    data: pkt.data.into_owned(),
                }),
                Block::SimplePacket(pkt) => out.push(Captured {
                    data: pkt.data.into_owned(),
                    comment: None,
                    interface: None,
                }),
                _ => {}
            }
        }
    } else {
        let mut r = PcapReader::new(&bytes[..]).map_err(pcap_err)?;
        let lt = r.header().datalink;
        if lt != DataLink::ETHERNET {
            return Err(PcapPortError::LinkType {
                path: p,
                linktype: lt,
            });
        }
        while let Some(pkt) = r.next_packet() {
            match pkt {
                Ok(pkt) => out.push(Captured {
                    data: pkt.data.into_owned(),
                    comment: None,
                    interface: None,
                }),
                Err(e) if is_partial_tail(&e) => break,
                Err(e) => return Err(pcap_err(e)),
            }
        }
    }
    Ok(out)
}

/// Every frame of a pcap or pcapng capture (see [`read_capture`]).
pub fn read_frames(path: &Path) -> Result<Vec<Vec<u8>>, PcapPortError> {
    Ok(read_capture(path)?.into_iter().map(|c| c.data).collect())
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
    refused: super::Refused,
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
            refused: super::Refused::default(),
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
                self.refused.oversize += 1;
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
    fn take_refused(&mut self) -> super::Refused {
        std::mem::take(&mut self.refused)
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
    fn tx_burst(&mut self, pkts: &mut [PktBuf]) -> usize {
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

/// Dropped packets to pcapng, each with a comment `drop: <name> (<code>)` and
/// the interface it arrived on (one interface block per worker's (port,
/// queue), named `port/queue`, nanosecond timestamps), as a ring of files:
/// when `path` exceeds `max_bytes` it becomes `path.1` (`path.1` becomes
/// `path.2`, …, up to `files - 1`) and a new `path` starts. A capture left by
/// an earlier run is never truncated: it is rotated into the ring, or, with
/// a single file, appended to as a new pcapng section.
#[derive(Clone)]
pub struct PcapDropSink {
    ring: Arc<Mutex<Ring>>,
    /// This handle's interface (index into the ring's interface names).
    interface: u32,
}

struct Ring {
    w: Option<PcapNgWriter<BufWriter<File>>>,
    path: std::path::PathBuf,
    written: u64,
    max_bytes: u64,
    files: u32,
    interfaces: Vec<String>,
}

/// Open `path` for a new section: truncated, or appended to when `append`.
fn open_ng(
    path: &Path,
    interfaces: &[String],
    append: bool,
) -> Result<PcapNgWriter<BufWriter<File>>, PcapPortError> {
    let p = path.display().to_string();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .map_err(|source| PcapPortError::Io {
            path: p.clone(),
            source,
        })?;
    let mut w = PcapNgWriter::new(BufWriter::new(f)).map_err(|source| PcapPortError::Pcap {
        path: p.clone(),
        source,
    })?;
    for name in interfaces {
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0xffff,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(name.clone())),
                // pcap-file writes timestamps in nanoseconds; say so (the
                // pcapng default is microseconds).
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        w.write_pcapng_block(idb)
            .map_err(|source| PcapPortError::Pcap {
                path: p.clone(),
                source,
            })?;
    }
    Ok(w)
}

impl PcapDropSink {
    /// A single file without rotation, with one interface per name.
    pub fn create(path: &Path, interfaces: &[String]) -> Result<Self, PcapPortError> {
        Self::ring(path, u64::MAX, 1, interfaces)
    }

    /// A ring of `files` files of about `max_bytes` each, with one interface
    /// per name (see [`PcapDropSink::for_interface`]).
    pub fn ring(
        path: &Path,
        max_bytes: u64,
        files: u32,
        interfaces: &[String],
    ) -> Result<Self, PcapPortError> {
        let mut interfaces = interfaces.to_vec();
        if interfaces.is_empty() {
            interfaces.push("rx".into());
        }
        let files = files.max(1);
        let earlier = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
        let mut ring = Ring {
            w: None,
            path: path.to_path_buf(),
            written: 0,
            max_bytes,
            files,
            interfaces,
        };
        if earlier && files > 1 {
            ring.shift();
        }
        ring.w = Some(open_ng(path, &ring.interfaces, earlier && files == 1)?);
        Ok(Self {
            ring: Arc::new(Mutex::new(ring)),
            interface: 0,
        })
    }

    /// A handle whose captures are recorded on interface `index` (the
    /// worker's port and queue, in the order given at creation).
    pub fn for_interface(&self, index: usize) -> Self {
        Self {
            ring: self.ring.clone(),
            interface: index as u32,
        }
    }
}

impl Ring {
    fn name(&self, i: u32) -> std::path::PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{i}"));
        std::path::PathBuf::from(p)
    }

    /// `path` → `path.1` → … → `path.(files-1)`; the oldest falls off.
    fn shift(&mut self) {
        if self.files > 1 {
            for i in (1..self.files - 1).rev() {
                let _ = std::fs::rename(self.name(i), self.name(i + 1));
            }
            let _ = std::fs::rename(&self.path, self.name(1));
        }
    }

    fn rotate(&mut self) {
        if let Some(w) = self.w.take() {
            let _ = w.into_inner().flush();
        }
        self.shift();
        self.w = open_ng(&self.path, &self.interfaces, false).ok();
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
            interface_id: self.interface,
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
        let mut sink = PcapDropSink::ring(&path, 1000, 3, &[]).unwrap();
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

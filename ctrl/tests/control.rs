//! The control plane driven directly: reloads, key rotation under traffic,
//! revocation attacks, credential announcements and peer-health failover.
//! Time is injected; the rotation test runs a real worker thread.

use ed25519_dalek::SigningKey;
use mnp_ctrl::control::Control;
use mnp_ctrl::credential::Credential;
use mnp_ctrl::health::HealthReport;
use mnp_ctrl::keys;
use mnp_ctrl::revocation::RevocationList;
use mnp_dataplane::crypto::{derive_packet_key_for, ZoneSecret};
use mnp_dataplane::parse::Encap;
use mnp_dataplane::port::{BufPool, PktBuf, RxQueue, RxStatus, TxQueue};
use mnp_dataplane::punt::{Punt, PUNT_PAYLOAD_MAX};
use mnp_dataplane::rcu::SnapshotCell;
use mnp_dataplane::replay::ReplayTable;
use mnp_dataplane::stats::{BurstStats, WorkerCounters};
use mnp_dataplane::wire::governance::{Claims, PacketType, Repr};
use mnp_dataplane::worker::{Clock, Worker};
use mnp_dataplane::{DropReason, Pipeline, Verdict};
use mnp_traffic::build::{self, Outer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NOW: u32 = 1_800_000_000;

fn tempdir(name: &str) -> mnp_testkit::TestDir {
    mnp_testkit::tempdir(&format!("ctrl-{name}"))
}

/// A config template; `{epochs}`, `{extra_authority}` and `{extra}` are filled per test.
const TEMPLATE: &str = r#"
[gateway]
id = 3
replay_credentials = 4096

[zones]
edge = 10
core = 20

[[ports]]
name = "demo0"
driver = "null"
mac = "02:00:00:00:00:01"

[[ports]]
name = "a0"
driver = "null"
mac = "02:00:00:00:0a:00"

[[ports]]
name = "b0"
driver = "null"
mac = "02:00:00:00:0b:00"

[[authorities]]
name = "acme"
id = 1
public_key = "keys/acme.pub"
zones = ["edge"]
max_trust = 5
epochs = [{epochs}]
{extra_authority}

[[zone_rules]]
from = "edge"
to = "core"
min_trust = 1
types = ["data", "credential", "health"]

[[routes]]
zone = "core"
port = "a0"
next_hop = "02:00:00:00:a0:01"
trust = 3
weight = 100

[[routes]]
zone = "core"
port = "b0"
next_hop = "02:00:00:00:b0:01"
trust = 3
weight = 60

{extra}
"#;

struct Setup {
    dir: mnp_testkit::TestDir,
    sk: SigningKey,
}

impl Setup {
    fn new(name: &str) -> Self {
        let dir = tempdir(name);
        keys::keygen(&dir.join("keys"), "acme", &[1], false).unwrap();
        let sk = keys::read_signing_key(&dir.join("keys/acme.key")).unwrap();
        Self { dir, sk }
    }
    fn secret(&self, epoch: u16) -> ZoneSecret {
        keys::read_private32(&self.dir.join(format!("keys/acme.epoch{epoch}.secret"))).unwrap()
    }
    fn write(&self, epochs: &[u16], extra_authority: &str, extra: &str) -> PathBuf {
        let e: Vec<String> = epochs
            .iter()
            .map(|e| format!("{{ epoch = {e}, secret = \"keys/acme.epoch{e}.secret\" }}"))
            .collect();
        let text = TEMPLATE
            .replace("{epochs}", &e.join(", "))
            .replace("{extra_authority}", extra_authority)
            .replace("{extra}", extra);
        let p = self.dir.join("gw.toml");
        // Make sure the file-change detector sees a new mtime or length.
        std::thread::sleep(Duration::from_millis(5));
        std::fs::write(&p, text).unwrap();
        p
    }
    fn control(&self, path: &Path) -> Control {
        let loaded = mnp_ctrl::load(path).unwrap_or_else(|e| panic!("{e}"));
        let cell = Arc::new(SnapshotCell::new(loaded.snapshot.clone()));
        Control::new(&loaded, cell, Instant::now()).unwrap()
    }
}

fn claims(credential: u64, epoch: u16) -> Claims {
    Claims {
        authority: 1,
        epoch,
        zone: 10,
        credential,
        not_before: NOW - 60,
        not_after: NOW + 3600,
        trust: 3,
        permitted: [20, 0, 0],
    }
}

fn frame(secret: &ZoneSecret, c: Claims, ty: PacketType, seq: u64, payload: &[u8]) -> Vec<u8> {
    let h = Repr {
        packet_type: ty,
        dst_zone: 20,
        sequence: seq,
        timestamp: NOW as u64 * 1000,
        claims: c,
        hop_budget: 4,
        hop_count: 0,
        lineage: [0; 12],
        mac: [0; 16],
    };
    build::governed(
        Encap::UdpIpv4,
        &Outer::default(),
        &h,
        &derive_packet_key_for(secret, &c),
        payload,
    )
}

/// Judge frames against the control's current snapshot.
fn judge(
    control: &Control,
    pipe: &mut Pipeline,
    frames: Vec<Vec<u8>>,
) -> (Vec<Verdict>, BurstStats) {
    let g = crossbeam::epoch::pin();
    let snap = control.snapshot_cell().load(&g);
    let mut b = frames;
    let mut v = vec![Verdict::Drop(DropReason::Truncated); b.len()];
    let mut s = BurstStats::default();
    pipe.process(snap, NOW as u64 * 1000, &mut b, &mut v, &mut s);
    (v, s)
}

fn fresh_pipe() -> Pipeline {
    Pipeline::new(Arc::new(ReplayTable::new(256)))
}

#[test]
fn bad_reload_keeps_the_old_snapshot_and_counts_the_failure() {
    let s = Setup::new("badreload");
    let path = s.write(&[1], "", "");
    let mut c = s.control(&path);
    let gen0 = c.stats.generation;
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("trust = 3\nweight = 100", "trust = 3\nweight = \"heavy\""),
    )
    .unwrap();
    assert!(
        !c.files_changed() && c.files_changed(),
        "noticed after one settling poll"
    );
    let err = c.reload(Instant::now()).unwrap_err().to_string();
    assert!(
        err.contains("gw.toml:") && err.contains("routes[0].weight"),
        "{err}"
    );
    assert_eq!(
        (
            c.stats.reloads_failed,
            c.stats.generation,
            c.stats.last_reload_ok
        ),
        (1, gen0, false)
    );
    // Traffic still judged by the old policy.
    let (v, _) = judge(
        &c,
        &mut fresh_pipe(),
        vec![frame(&s.secret(1), claims(1, 1), PacketType::Data, 1, b"x")],
    );
    assert!(matches!(v[0], Verdict::Forward { .. }), "{v:?}");
    // Ports are structural: a reload that changes them is refused.
    let path = s.write(&[1], "", "");
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("name = \"b0\"", "name = \"b1\"")
            .replace("port = \"b0\"", "port = \"b1\""),
    )
    .unwrap();
    let err = c.reload(Instant::now()).unwrap_err().to_string();
    assert!(err.contains("restart"), "{err}");
    assert_eq!(c.stats.reloads_failed, 2);
    // And a good file reloads.
    s.write(&[1], "", "");
    assert_eq!(c.reload(Instant::now()).unwrap(), gen0 + 1);
    let events = c.take_events();
    assert!(events
        .iter()
        .any(|e| e.text.contains("FAILED") && e.level == mnp_ctrl::control::EventLevel::Error));
}

/// Holders sending valid packets with the epoch the test tells them to use.
struct Holders {
    secret: Arc<Mutex<(u16, ZoneSecret)>>,
    seq: u64,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RxQueue for Holders {
    fn rx_burst(&mut self, pool: &mut BufPool, out: &mut Vec<PktBuf>, max: usize) -> RxStatus {
        if self.stop.load(Ordering::SeqCst) {
            return RxStatus::Exhausted;
        }
        let (epoch, secret) = *self.secret.lock().unwrap();
        for _ in 0..max {
            let Some(mut b) = pool.get() else { break };
            self.seq += 1;
            let f = frame(
                &secret,
                claims(self.seq % 8, epoch),
                PacketType::Data,
                self.seq,
                b"rotating",
            );
            b.fill(&f);
            out.push(b);
            self.sent.fetch_add(1, Ordering::SeqCst);
        }
        RxStatus::Open
    }
}

struct Count(Arc<AtomicU64>);
impl TxQueue for Count {
    fn tx_burst(&mut self, pkts: &mut [PktBuf]) -> usize {
        self.0.fetch_add(pkts.len() as u64, Ordering::SeqCst);
        pkts.len()
    }
}

#[test]
fn key_rotation_under_traffic_loses_no_valid_packet() {
    let s = Setup::new("rotate");
    let path = s.write(&[1], "", "");
    let mut c = s.control(&path);
    let secret = Arc::new(Mutex::new((1u16, s.secret(1))));
    let sent = Arc::new(AtomicU64::new(0));
    let tx = Arc::new(AtomicU64::new(0));
    let stop_src = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(WorkerCounters::default());
    let mut w = Worker::new(
        Box::new(Holders {
            secret: secret.clone(),
            seq: 0,
            sent: sent.clone(),
            stop: stop_src.clone(),
        }),
        (0..3)
            .map(|_| Box::new(Count(tx.clone())) as Box<dyn TxQueue>)
            .collect(),
        BufPool::new(128, 512),
        Pipeline::new(Arc::new(ReplayTable::new(1024))),
        c.snapshot_cell().clone(),
        counters.clone(),
        stop.clone(),
        Clock::Fixed(NOW),
    );
    let worker = std::thread::spawn(move || w.run());
    let wait_for_more = |n: u64| {
        let target = sent.load(Ordering::SeqCst) + n;
        while sent.load(Ordering::SeqCst) < target {
            std::thread::yield_now();
        }
    };
    wait_for_more(2000);
    // 1. The authority creates epoch 2 (same identity); the gateway loads both.
    keys::keygen(&s.dir.join("keys"), "acme", &[2], false).unwrap();
    s.write(&[1, 2], "", "");
    c.reload(Instant::now()).unwrap();
    wait_for_more(2000);
    // 2. Holders move to epoch-2 keys.
    *secret.lock().unwrap() = (2, s.secret(2));
    wait_for_more(2000);
    // 3. Epoch 1 is retired.
    s.write(&[2], "", "");
    c.reload(Instant::now()).unwrap();
    wait_for_more(2000);
    stop_src.store(true, Ordering::SeqCst);
    worker.join().unwrap();
    let st = counters.read();
    assert_eq!(
        st.dropped(),
        0,
        "drops during rotation: {:?}",
        DropReason::ALL
            .iter()
            .filter(|r| st.drop_count(**r) > 0)
            .collect::<Vec<_>>()
    );
    assert_eq!(st.forwarded, sent.load(Ordering::SeqCst));
    assert_eq!(tx.load(Ordering::SeqCst), st.forwarded);
    // A packet still using the retired epoch is dropped under its own reason.
    let (v, _) = judge(
        &c,
        &mut fresh_pipe(),
        vec![frame(
            &s.secret(1),
            claims(1, 1),
            PacketType::Data,
            1,
            b"old",
        )],
    );
    assert_eq!(v[0], Verdict::Drop(DropReason::EpochRetired));
}

#[test]
fn revocation_lists_load_hot_and_resist_forgery_staleness_and_stripping() {
    let s = Setup::new("revoke");
    let list_path = s.dir.join("keys/acme.revocations");
    std::fs::write(
        &list_path,
        RevocationList::sign(&s.sk, 1, 1, NOW as u64, &[500]).to_toml(),
    )
    .unwrap();
    let path = s.write(&[1], "revocations = \"keys/acme.revocations\"", "");
    let mut c = s.control(&path);
    let sec = s.secret(1);
    let mut pipe = fresh_pipe();
    let mut seq = 0;
    let mut send = |c: &Control, cred: u64| {
        seq += 1;
        judge(
            c,
            &mut pipe,
            vec![frame(&sec, claims(cred, 1), PacketType::Data, seq, b"r")],
        )
        .0[0]
    };
    assert_eq!(send(&c, 500), Verdict::Drop(DropReason::Revoked));
    assert!(matches!(send(&c, 501), Verdict::Forward { .. }));

    // Serial 2 revokes 501 too: dropped from the first burst after the reload.
    std::fs::write(
        &list_path,
        RevocationList::sign(&s.sk, 1, 2, NOW as u64, &[500, 501]).to_toml(),
    )
    .unwrap();
    assert!(
        !c.files_changed(),
        "a file that just changed is left to settle for one poll"
    );
    assert!(
        c.files_changed(),
        "the watcher notices the list once it is stable"
    );
    c.reload(Instant::now()).unwrap();
    assert_eq!(send(&c, 501), Verdict::Drop(DropReason::Revoked));
    assert_eq!(c.revocation_serial(1), Some(2));

    // Forged: a newer serial that un-revokes 501, signature not by the authority.
    let attacker = SigningKey::from_bytes(&[0x66; 32]);
    let attacks = [
        RevocationList::sign(&attacker, 1, 3, NOW as u64, &[500]).to_toml(),
        // Altered after signing: 501 removed from a genuine serial-3 list.
        RevocationList::sign(&s.sk, 1, 3, NOW as u64, &[500, 501])
            .to_toml()
            .replace("500, 501", "500"),
        // Stale: a genuine older list (rollback).
        RevocationList::sign(&s.sk, 1, 1, NOW as u64, &[500]).to_toml(),
        // Unsigned.
        "authority = 1\nserial = 9\nissued_at = 0\ncredentials = []\n".to_string(),
    ];
    for (i, text) in attacks.iter().enumerate() {
        std::fs::write(&list_path, text).unwrap();
        c.reload(Instant::now()).unwrap();
        assert_eq!(
            c.stats.revocations_rejected,
            i as u64 + 1,
            "attack {i} counted"
        );
        assert_eq!(
            c.revocation_serial(1),
            Some(2),
            "attack {i}: the current list stays"
        );
        assert_eq!(
            send(&c, 501),
            Verdict::Drop(DropReason::Revoked),
            "attack {i}: 501 stays revoked"
        );
    }
    assert!(
        c.take_events()
            .iter()
            .filter(|e| e.text.contains("REJECTED"))
            .count()
            >= 4
    );

    // At start, a bad list is fatal rather than silently missing.
    let loaded = mnp_ctrl::load(&path).unwrap();
    let err = Control::new(
        &loaded,
        Arc::new(SnapshotCell::new(loaded.snapshot.clone())),
        Instant::now(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("acme.revocations"), "{err}");
}

fn punt_of(f: &[u8]) -> Punt {
    Punt::from_frame(f, 6160, 0x88b5).expect("a governed control frame")
}

#[test]
fn credential_announcements_are_batch_verified_into_the_registry() {
    let s = Setup::new("announce");
    let path = s.write(&[1], "", "");
    let mut c = s.control(&path);
    let sec = s.secret(1);
    let replay = Arc::new(ReplayTable::new(256));
    let mut pipe = Pipeline::new(replay.clone());
    let announce = |cred: &Credential, claims: Claims, seq: u64| {
        frame(
            &sec,
            claims,
            PacketType::CredentialAnnouncement,
            seq,
            &cred.to_bytes(),
        )
    };
    let mut frames = Vec::new();
    for id in 100..110 {
        let cl = claims(id, 1);
        frames.push(announce(&Credential::issue(&s.sk, &cl), cl, 1));
    }
    // Forged by another key; and a genuine credential announced under other claims.
    let forged = Credential::issue(&SigningKey::from_bytes(&[1; 32]), &claims(110, 1));
    frames.push(announce(&forged, claims(110, 1), 1));
    let other = Credential::issue(&s.sk, &claims(111, 1));
    frames.push(announce(&other, claims(112, 1), 1));
    let (v, st) = judge(&c, &mut pipe, frames.clone());
    assert!(
        v.iter()
            .all(|v| *v == Verdict::Local(PacketType::CredentialAnnouncement)),
        "{v:?}"
    );
    assert_eq!(st.local, 12);
    let punts: Vec<Punt> = frames.iter().map(|f| punt_of(f)).collect();
    c.handle_punts(&punts, NOW, Instant::now());
    assert_eq!(
        (c.stats.credentials_admitted, c.stats.credentials_rejected),
        (10, 2)
    );
    assert_eq!(c.registry().count(), 10);

    // The registry sees the credential's traffic.
    let data: Vec<Vec<u8>> = (2..7)
        .map(|seq| frame(&sec, claims(105, 1), PacketType::Data, seq, b"12345"))
        .collect();
    judge(&c, &mut pipe, data);
    let e = c.registry().find(|e| e.claims.credential == 105).unwrap();
    // Its replay window is the registry's: the announcement consumed
    // sequence 1, the data packets 2 to 6.
    assert_eq!(replay.highest(e.replay_key.unwrap()), Some(6));
    assert_eq!((e.first_seen, e.last_seen, e.announcements), (NOW, NOW, 1));

    // A replayed announcement is dropped by the replay window.
    let (v, _) = judge(&c, &mut pipe, vec![frames[0].clone()]);
    assert_eq!(v[0], Verdict::Drop(DropReason::Replay));
}

#[test]
fn a_full_control_queue_is_a_counted_drop_and_never_blocks_the_worker() {
    let s = Setup::new("overflow");
    let path = s.write(&[1], "", "");
    let c = s.control(&path);
    let sec = s.secret(1);
    let frames: Vec<Vec<u8>> = (0..5u64)
        .map(|i| {
            let cl = claims(300 + i, 1);
            frame(
                &sec,
                cl,
                PacketType::CredentialAnnouncement,
                1,
                &Credential::issue(&s.sk, &cl).to_bytes(),
            )
        })
        .collect();
    let (tx, rx) = crossbeam::channel::bounded::<Punt>(1);
    let counters = Arc::new(WorkerCounters::default());
    let mut w = Worker::new(
        Box::new(mnp_dataplane::port::memory::MemoryRx::new(frames)),
        (0..3)
            .map(|_| Box::new(mnp_dataplane::port::NullTx::default()) as Box<dyn TxQueue>)
            .collect(),
        BufPool::new(64, 512),
        fresh_pipe(),
        c.snapshot_cell().clone(),
        counters.clone(),
        Arc::new(AtomicBool::new(false)),
        Clock::Fixed(NOW),
    );
    w.punt = Some(tx);
    w.run();
    let st = counters.read();
    assert_eq!(
        (st.local, st.drop_count(DropReason::ControlQueueFull)),
        (1, 4)
    );
    assert_eq!(rx.try_iter().count(), 1);
    assert_eq!(PUNT_PAYLOAD_MAX, 256);
}

#[test]
fn traffic_fails_over_when_a_peer_goes_silent_and_fails_back_when_it_recovers() {
    let s = Setup::new("failover");
    let ka = SigningKey::from_bytes(&[0xa; 32]);
    let kb = SigningKey::from_bytes(&[0xb; 32]);
    keys::write_hex(
        &s.dir.join("keys/a.pub"),
        ka.verifying_key().as_bytes(),
        0o644,
        true,
    )
    .unwrap();
    keys::write_hex(
        &s.dir.join("keys/b.pub"),
        kb.verifying_key().as_bytes(),
        0o644,
        true,
    )
    .unwrap();
    let peers = r#"
[[peers]]
name = "a"
gateway_id = 11
public_key = "keys/a.pub"
next_hop = "02:00:00:00:a0:01"

[[peers]]
name = "b"
gateway_id = 12
public_key = "keys/b.pub"
next_hop = "02:00:00:00:b0:01"

[health]
silent_after_ms = 1000
withdraw_after_ms = 3000
"#;
    let path = s.write(&[1], "", peers);
    let loaded = mnp_ctrl::load(&path).unwrap();
    let t0 = Instant::now();
    let mut c = Control::new(
        &loaded,
        Arc::new(SnapshotCell::new(loaded.snapshot.clone())),
        t0,
    )
    .unwrap();
    let sec = s.secret(1);
    let mut pipe = fresh_pipe();
    let mut seq = 0u64;
    let mut route = |c: &Control| {
        // Several credentials, so a tie would show as a split; there is none.
        let frames: Vec<Vec<u8>> = (0..8)
            .map(|cred| {
                seq += 1;
                frame(&sec, claims(cred, 1), PacketType::Data, seq, b"d")
            })
            .collect();
        let (v, _) = judge(c, &mut pipe, frames);
        let ports: std::collections::BTreeSet<u16> = v
            .iter()
            .map(|v| match v {
                Verdict::Forward { port, .. } => *port,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ports.len(), 1, "{v:?}");
        *ports.iter().next().unwrap()
    };
    let (a, b) = (1u16, 2u16);
    let report = |k: &SigningKey, id: u32, ms: u64, h: u16, seq: u64| {
        let r = HealthReport::sign(k, id, ms, h);
        punt_of(&frame(
            &sec,
            claims(900 + id as u64, 1),
            PacketType::HealthReport,
            seq,
            &r.to_bytes(),
        ))
    };
    c.handle_punts(
        &[report(&ka, 11, 1, 1000, 1), report(&kb, 12, 1, 1000, 1)],
        NOW,
        t0,
    );
    assert_eq!(c.stats.health_accepted, 2);
    assert_eq!(route(&c), a, "A is the best route while healthy");
    let ms = |d: u64| t0 + Duration::from_millis(d);
    // B keeps reporting; A falls silent.
    c.handle_punts(&[report(&kb, 12, 2, 1000, 2)], NOW, ms(1400));
    c.tick(ms(1500));
    assert_eq!(route(&c), a, "decaying (750) but still above B (600)");
    c.handle_punts(&[report(&kb, 12, 3, 1000, 3)], NOW, ms(2200));
    c.tick(ms(2300));
    assert_eq!(route(&c), b, "failed over once A's score fell below B's");
    c.handle_punts(&[report(&kb, 12, 4, 1000, 4)], NOW, ms(3100));
    c.tick(ms(3200));
    assert_eq!(
        c.peer_health(ms(3200))[0],
        ("a".to_string(), 0),
        "A withdrawn"
    );
    assert!(c
        .take_events()
        .iter()
        .any(|e| e.text.contains("peer a: routes WITHDRAWN")
            && e.level == mnp_ctrl::control::EventLevel::Warn));
    // A forged report (B's key claiming to be A) changes nothing.
    c.handle_punts(&[report(&kb, 11, 10, 1000, 5)], NOW, ms(3300));
    assert_eq!(route(&c), b);
    assert_eq!(c.stats.health_rejected, 1);
    // A recovers: fail back.
    c.handle_punts(&[report(&ka, 11, 11, 1000, 6)], NOW, ms(3400));
    assert_eq!(route(&c), a, "failed back");
    // A replayed old report is ignored.
    c.handle_punts(&[report(&ka, 11, 11, 0, 7)], NOW, ms(3500));
    assert_eq!(route(&c), a);
}

/// Issue #16: a zone secret replaced in place (a compromised one rotated)
/// is noticed by the file watch like every other file, and takes effect.
#[test]
fn a_zone_secret_replaced_on_disk_takes_effect_at_the_next_poll() {
    let s = Setup::new("secret-swap");
    let path = s.write(&[1], "", "");
    let mut c = s.control(&path);
    let old = s.secret(1);
    let pkt = |secret: &ZoneSecret| frame(secret, claims(1, 1), PacketType::Data, 1, b"x");
    let (v, _) = judge(&c, &mut fresh_pipe(), vec![pkt(&old)]);
    assert!(matches!(v[0], Verdict::Forward { .. }), "{v:?}");
    assert!(!c.files_changed());
    // Replace the secret file's contents (same path, 0600).
    let file = s.dir.join("keys/acme.epoch1.secret");
    let new: ZoneSecret = [0x5e; 32];
    std::thread::sleep(Duration::from_millis(20));
    keys::write_hex(&file, &new, 0o600, true).unwrap();
    // The watch waits for a file to settle: two polls.
    let mut changed = false;
    for _ in 0..20 {
        if c.files_changed() {
            changed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(changed, "the replaced secret file was not noticed");
    c.reload(Instant::now()).unwrap();
    let (v, _) = judge(&c, &mut fresh_pipe(), vec![pkt(&old), pkt(&new)]);
    assert_eq!(
        v[0],
        Verdict::Drop(DropReason::BadMac),
        "old secret retired"
    );
    assert!(
        matches!(v[1], Verdict::Forward { .. }),
        "new secret in force: {v:?}"
    );
}

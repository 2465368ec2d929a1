//! Multi-key, multi-message BLAKE3 in SIMD lanes.
//!
//! The blake3 crate gets no parallelism inside a message shorter than 2 KiB,
//! and its many-message path takes one key for all inputs. Every packet here
//! has its own key and its own length, so this module hashes N independent
//! (key, message) pairs at once: one BLAKE3 compression per lane per step, 16
//! lanes on AVX-512, 8 on AVX2, and a portable 4-lane path. Each lane walks
//! its own message through the BLAKE3 tree — chunk blocks, a partial final
//! block, parent nodes for messages over 1024 bytes — and lanes that finish
//! early are refilled with the next message while the others go on.
//!
//! The blake3 crate is the reference: property tests compare every level
//! against it (`tests` below). `unsafe` and intrinsics stay in the backend
//! files of this module.

// Lane- and word-indexed loops mirror the word-major layout the kernels
// load; iterator chains over two indices at once would hide it.
#![allow(clippy::needless_range_loop)]

mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::atomic::{AtomicU8, Ordering};

pub const IV: [u32; 8] = [
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
];
/// BLAKE3's message permutation, applied between rounds.
pub(crate) const MSG_PERMUTATION: [usize; 16] =
    [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
pub(crate) const CHUNK_START: u32 = 1;
pub(crate) const CHUNK_END: u32 = 2;
pub(crate) const PARENT: u32 = 4;
pub(crate) const ROOT: u32 = 8;
/// Mode flag of keyed hashing.
pub const KEYED_HASH: u32 = 16;
const DERIVE_KEY_CONTEXT: u32 = 32;
/// Mode flag of the second half of derive_key (hashing the key material).
pub const DERIVE_KEY_MATERIAL: u32 = 64;
pub(crate) const BLOCK_LEN: usize = 64;
const CHUNK_LEN: usize = 1024;

/// Which node of BLAKE3's tree a batch of one-chunk inputs computes (the
/// AVX-512 `chunk16`): every input's own whole message, or one chunk of a
/// longer one, or the root parent of a two-chunk message (each input then
/// the two chunks' CVs, 64 bytes, in `mode | PARENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Node {
    /// A message of one chunk: the root, the output itself.
    Root,
    /// Chunk `i` of a longer message: its chaining value.
    Chunk(u32),
    /// The root parent of two chunks.
    RootParent,
}

impl Node {
    /// The flag on a node's first block.
    pub(crate) fn start_flag(self) -> u32 {
        match self {
            Node::Root | Node::Chunk(_) => CHUNK_START,
            Node::RootParent => 0,
        }
    }
    /// The flags on a node's last block.
    pub(crate) fn end_flags(self) -> u32 {
        match self {
            Node::Root => CHUNK_END | ROOT,
            Node::Chunk(_) => CHUNK_END,
            Node::RootParent => ROOT,
        }
    }
    /// The counter of every block: the chunk's index (0 for a parent).
    pub(crate) fn counter(self) -> u32 {
        match self {
            Node::Chunk(i) => i,
            Node::Root | Node::RootParent => 0,
        }
    }
}

/// Which backend runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Portable = 1,
    Avx2 = 2,
    Avx512 = 3,
}

impl Level {
    /// Lanes per compression step.
    pub fn lanes(self) -> usize {
        match self {
            Level::Portable => portable::LANES,
            Level::Avx2 => 8,
            Level::Avx512 => 16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        [Level::Portable, Level::Avx2, Level::Avx512]
            .into_iter()
            .find(|l| l.name() == s)
    }

    /// The best level this CPU supports (checked at run time).
    pub fn supported() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Level::Avx2;
            }
        }
        Level::Portable
    }

    /// Whether this CPU can run `self`.
    pub fn is_supported(self) -> bool {
        self <= Self::supported()
    }

    /// The level in use: detected once, lowered by `MNP_SIMD=portable|avx2`
    /// (for tests and benchmarks) or [`Level::force`]. Never above what the
    /// CPU supports.
    pub fn current() -> Self {
        static CURRENT: AtomicU8 = AtomicU8::new(0);
        match CURRENT.load(Ordering::Relaxed) {
            1 => Level::Portable,
            2 => Level::Avx2,
            3 => Level::Avx512,
            _ => {
                let best = Self::supported();
                let l = std::env::var("MNP_SIMD")
                    .ok()
                    .and_then(|s| Level::from_name(&s))
                    .map_or(best, |f| f.min(best));
                CURRENT.store(l as u8, Ordering::Relaxed);
                l
            }
        }
    }

    /// `self` if the CPU supports it, else the best level it does.
    pub fn or_supported(self) -> Self {
        self.min(Self::supported())
    }
}

/// One message to hash: `key` words, a mode flag ([`KEYED_HASH`] or
/// [`DERIVE_KEY_MATERIAL`]), and the message in up to two pieces (the MAC input
/// is the immutable header and the payload, which are not adjacent in a frame).
#[derive(Clone, Copy)]
pub struct Input<'a> {
    pub key: &'a [u32; 8],
    pub mode: u32,
    pub head: &'a [u8],
    pub tail: &'a [u8],
    /// The whole message already zero-padded to one block, where the caller
    /// built it so (`head` then holds its bytes and `tail` is empty): it is
    /// compressed in place, not staged (a lineage fold's 17 bytes of
    /// material, written just before, are not copied again).
    pub whole: Option<&'a [u8; BLOCK_LEN]>,
}

impl Input<'static> {
    /// The empty message: a placeholder to fill arrays of inputs with.
    pub const EMPTY: Self = Self {
        key: &IV,
        mode: KEYED_HASH,
        head: &[],
        tail: &[],
        whole: None,
    };
}

impl<'a> Input<'a> {
    /// A hash of one contiguous message in `mode` under `key`.
    pub fn new(key: &'a [u32; 8], mode: u32, msg: &'a [u8]) -> Self {
        Self {
            key,
            mode,
            head: msg,
            tail: &[],
            whole: None,
        }
    }

    /// A keyed hash of one contiguous message.
    pub fn keyed(key: &'a [u32; 8], msg: &'a [u8]) -> Self {
        Self::new(key, KEYED_HASH, msg)
    }

    /// A message of `len` ≤ 64 bytes held zero-padded in `block`.
    pub fn padded(key: &'a [u32; 8], mode: u32, block: &'a [u8; BLOCK_LEN], len: usize) -> Self {
        Self {
            whole: Some(block),
            ..Self::new(key, mode, &block[..len.min(BLOCK_LEN)])
        }
    }
}

impl Input<'_> {
    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }
    /// Block `i` of the message into `buf`, zero-padded; returns its length.
    fn block(&self, start: usize, buf: &mut [u8; BLOCK_LEN]) -> usize {
        let end = (start + BLOCK_LEN).min(self.len());
        let n = end - start;
        let h = self.head.len();
        if end <= h {
            buf[..n].copy_from_slice(&self.head[start..end]);
        } else if start >= h {
            buf[..n].copy_from_slice(&self.tail[start - h..end - h]);
        } else {
            buf[..h - start].copy_from_slice(&self.head[start..]);
            buf[h - start..n].copy_from_slice(&self.tail[..end - h]);
        }
        buf[n..].fill(0);
        n
    }
}

pub fn words(key: &[u8; 32]) -> [u32; 8] {
    let mut w = [0u32; 8];
    for (i, c) in key.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    w
}

/// The key of derive_key's second stage for `context`: the context string
/// hashed in DERIVE_KEY_CONTEXT mode. Computed once per context.
pub fn context_key(context: &str) -> [u32; 8] {
    let mut out = [[0u8; 32]; 1];
    let iv = IV;
    hash_many(
        Level::Portable,
        &[Input::new(&iv, DERIVE_KEY_CONTEXT, context.as_bytes())],
        &mut out,
    );
    words(&out[0])
}

/// What a lane is doing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Compressing block `block` of chunk `chunk`.
    Chunk,
    /// Merging the CV just produced into the stack: `left` merges to go.
    Merge(u32),
    /// Folding the stack into the final chunk's CV, ending at the root.
    Finalize,
}

/// A lane's progress through its message (its CV stack lives apart, so
/// refilling a lane copies only these few words).
#[derive(Clone, Copy)]
struct Lane {
    phase: Phase,
    input: usize,
    len: usize,
    chunk: u64,
    chunks: u64,
    block: usize,
    sp: usize,
    /// CV carried into a merge or finalize step.
    carry: [u32; 8],
    /// The flags of the job just issued (to tell what finished).
    flags: u32,
}

impl Lane {
    const IDLE: Lane = Lane {
        phase: Phase::Idle,
        input: 0,
        len: 0,
        chunk: 0,
        chunks: 0,
        block: 0,
        sp: 0,
        carry: [0; 8],
        flags: 0,
    };
}

/// Per-step inputs of every lane, word-major (`[word][lane]`), as the
/// kernels load them.
pub(crate) struct Step<const L: usize> {
    pub cv: [[u32; L]; 8],
    pub msg: [[u32; L]; 16],
    pub counter_lo: [u32; L],
    pub counter_hi: [u32; L],
    pub block_len: [u32; L],
    pub flags: [u32; L],
}

impl<const L: usize> Step<L> {
    fn new() -> Self {
        Self {
            cv: [[0; L]; 8],
            msg: [[0; L]; 16],
            counter_lo: [0; L],
            counter_hi: [0; L],
            block_len: [0; L],
            flags: [0; L],
        }
    }
}

/// The kernels of one level: gather each lane's 64-byte block into the
/// word-major message, and compress every lane once.
struct Kernel<const L: usize> {
    gather: fn(&[&[u8; BLOCK_LEN]; L], &mut [[u32; L]; 16]),
    /// Each lane's key into the word-major CV (a transpose, like `gather`).
    keys: fn(&[&[u32; 8]; L], &mut [[u32; L]; 8]),
    compress: fn(&mut Step<L>),
    /// `gather` then `compress`, fused where a backend can keep the message
    /// in registers.
    compress_rows: fn(&[&[u8; BLOCK_LEN]; L], &mut Step<L>),
    /// A block that is not whole inside one piece, staged zero-padded.
    stage: Stage,
}

/// Stages a block that is not whole inside one piece, zero-padded.
type Stage = fn(&Input, usize, &mut [u8; BLOCK_LEN]);

/// Whether the CPU has AVX-512F and AVX-512BW (masked byte loads); checked
/// once.
#[cfg(target_arch = "x86_64")]
fn has_avx512bw() -> bool {
    static BW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *BW.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
    })
}

/// The portable staging: `Input::block`.
fn stage_scalar(inp: &Input, start: usize, pad: &mut [u8; BLOCK_LEN]) {
    inp.block(start, pad);
}

/// Masked loads where the CPU has AVX-512BW (checked once), else
/// `Input::block`.
#[cfg(target_arch = "x86_64")]
fn stage_for() -> Stage {
    if has_avx512bw() {
        x86::stage_block
    } else {
        stage_scalar
    }
}

/// Scalar gather: 16 little-endian words from each lane's block.
fn gather_scalar<const L: usize>(rows: &[&[u8; BLOCK_LEN]; L], msg: &mut [[u32; L]; 16]) {
    for l in 0..L {
        for w in 0..16 {
            let b = &rows[l][4 * w..4 * w + 4];
            msg[w][l] = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    }
}

/// Scalar key load: each lane's 8 key words into the word-major CV.
fn keys_scalar<const L: usize>(keys: &[&[u32; 8]; L], cv: &mut [[u32; L]; 8]) {
    for l in 0..L {
        for w in 0..8 {
            cv[w][l] = keys[l][w];
        }
    }
}

/// CV stack depth of the lane kernels: enough for messages of up to 127
/// chunks (127 KiB; a frame is at most 64 KiB). Longer inputs take a
/// portable path with a deep stack.
const LANE_DEPTH: usize = 7;
const DEEP_DEPTH: usize = 48;
const DEEP_CHUNKS: usize = 127;

/// Ask for every cache line of `bytes` ahead of use: a frame that another
/// core wrote (a zero-copy memif peer; on a NIC, DMA into the LLC) is not
/// in this core's cache, and the lanes read their blocks in place, 16
/// messages in lock step, a pattern the hardware prefetchers do not follow.
/// A hint only: it never changes a result.
#[inline]
pub fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    x86::prefetch(bytes);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Ask for the cache line holding `x` (into every level), ahead of a read
/// and write of it.
#[inline]
pub fn prefetch_line<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    x86::prefetch_t0(x);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// Prefetch the bytes of `inputs` (both pieces; a padded block is local)
/// past the line each piece starts in: the caller found the piece there
/// (the pipeline's parse stage read the governance header, in which the
/// MAC's head and tail begin), so for frames up to about two lines no
/// hint is issued at all.
fn prefetch_inputs(inputs: &[Input]) {
    for inp in inputs {
        if inp.whole.is_none() {
            #[cfg(target_arch = "x86_64")]
            {
                x86::prefetch_after_first(inp.head);
                x86::prefetch_after_first(inp.tail);
            }
        }
    }
}

/// One-chunk messages in lock step, up to `lanes` per call (`x86::chunk16`
/// or `x86::chunk8`): the kernel behind the one- and two-chunk paths of
/// `hash_many` and behind [`chunk_cvs`] and [`root_parents`].
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct ChunkKernel {
    lanes: usize,
    run: fn(&[Input], &mut [[u8; 32]], Node),
    /// Two-chunk messages whole (`x86::two_chunks16`, `x86::two_chunks8`).
    two: TwoChunks,
}

/// A kernel for messages of more than one chunk and at most two, given
/// whole: the inputs, the outputs.
#[cfg(target_arch = "x86_64")]
type TwoChunks = fn(&[Input], &mut [[u8; 32]]);

/// The chunk kernel for `level`, where it has one: AVX-512BW's 16 lanes
/// (masked byte loads), or AVX2's 8 (pads staged for partial blocks).
/// AVX-512F without BW keeps `chunk_sync` on 16 lanes.
#[cfg(target_arch = "x86_64")]
fn chunk_kernel(level: Level) -> Option<ChunkKernel> {
    match level.or_supported() {
        Level::Avx512 if has_avx512bw() => Some(ChunkKernel {
            lanes: 16,
            run: x86::chunk16,
            two: x86::two_chunks16,
        }),
        Level::Avx2 => Some(ChunkKernel {
            lanes: 8,
            run: x86::chunk8,
            two: x86::two_chunks8,
        }),
        _ => None,
    }
}

/// Whether `level` can run [`chunk_cvs`] and [`root_parents`] (a chunk
/// kernel: AVX-512BW or AVX2); where not, hash whole messages with
/// [`hash_many`].
pub fn tree_steps(level: Level) -> bool {
    #[cfg(target_arch = "x86_64")]
    if chunk_kernel(level).is_some() {
        return true;
    }
    let _ = level;
    false
}

/// The chaining value of chunk `index` of longer messages: each input is
/// that chunk's bytes (1024, or fewer for a message's last chunk) under
/// its message's key and mode. For callers whose messages share a chunk
/// (a generator whose payloads repeat), with [`root_parents`]. Writes
/// nothing and returns false where `tree_steps(level)` is false.
pub fn chunk_cvs(level: Level, inputs: &[Input], index: u32, out: &mut [[u8; 32]]) -> bool {
    if !tree_steps(level) || inputs.iter().any(|inp| inp.len() > CHUNK_LEN) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = chunk_kernel(level) {
        for (batch, outs) in inputs.chunks(k.lanes).zip(out.chunks_mut(k.lanes)) {
            (k.run)(batch, outs, Node::Chunk(index));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (index, out);
    true
}

/// The outputs of two-chunk messages from their chunks' chaining values:
/// `out[i]` is the root parent of `left[i]` and `right[i]` under `keys[i]`
/// in `mode` (the same 32 bytes `hash_many` gives for the whole message).
/// Writes nothing and returns false where `tree_steps(level)` is false.
pub fn root_parents(
    level: Level,
    keys: &[&[u32; 8]],
    mode: u32,
    left: &[[u8; 32]],
    right: &[[u8; 32]],
    out: &mut [[u8; 32]],
) -> bool {
    if !tree_steps(level) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(kernel) = chunk_kernel(level) {
        let n = keys.len().min(left.len()).min(right.len()).min(out.len());
        let groups = keys[..n]
            .chunks(16)
            .zip(left.chunks(16))
            .zip(right.chunks(16));
        for (((k, l), r), outs) in groups.zip(out.chunks_mut(16)) {
            let mut kms = [(&IV, 0); 16];
            for (km, key) in kms.iter_mut().zip(k) {
                *km = (*key, mode);
            }
            parents(kernel, &kms[..k.len()], l, r, outs);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (keys, mode, left, right, out);
    true
}

/// Hash every input; `out[i]` receives the first 32 bytes of input `i`'s
/// BLAKE3 output (truncate as the protocol needs).
pub fn hash_many(level: Level, inputs: &[Input], out: &mut [[u8; 32]]) {
    // Messages longer than two blocks are (the MACs of) frames past the
    // bytes the pipeline's burst-start prefetch covers: ask for the next 16
    // while these are hashed, and for the first 16 now. A MAC of up to two
    // blocks lies in a frame of at most 222 bytes (UDP/IPv6), whose first
    // 150 that prefetch asked for already; the rest is at most one line
    // past them. Walking such inputs for hints cost ~1.2 ns a 128-byte
    // packet (docs/performance.md, fifteenth round).
    // One pass for both questions (a `max` over the inputs compiles to
    // gathers, which cost more than the test; a pass with an exit does not).
    let (mut ahead, mut one_chunk) = (false, true);
    for inp in inputs {
        let len = inp.len();
        if len > CHUNK_LEN {
            (ahead, one_chunk) = (true, false);
            break;
        }
        ahead |= len > 2 * BLOCK_LEN;
    }
    if ahead {
        prefetch_inputs(&inputs[..inputs.len().min(16)]);
    }
    // Messages of one chunk (every packet key, every lineage fold, the MAC
    // of every frame up to ~1 KiB) go chunk-synchronously: no CV stack, no
    // per-lane state machine.
    if one_chunk {
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = chunk_kernel(level) {
            let mut next = inputs.chunks(k.lanes).skip(1);
            for (batch, outs) in inputs.chunks(k.lanes).zip(out.chunks_mut(k.lanes)) {
                if let (true, Some(n)) = (ahead, next.next()) {
                    prefetch_inputs(n);
                }
                (k.run)(batch, outs, Node::Root);
            }
            return;
        }
        return match level.or_supported() {
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => chunk_sync::<16>(inputs, out, &kernel16(), scatter_avx512),
            // AVX2 always has its chunk kernel (`chunk8`, above).
            _ => chunk_sync::<{ portable::LANES }>(inputs, out, &kernel_portable(), scatter_scalar),
        };
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = chunk_kernel(level) {
        if inputs.iter().all(|inp| inp.len() <= 2 * CHUNK_LEN) {
            // Up to two chunks (frames up to ~2 KiB, standard Ethernet's
            // 1518 B among them): chunk by chunk, the lanes in lock step,
            // then the parents, as one-chunk messages are.
            return two_chunks(k, inputs, out);
        }
    }
    if ahead {
        // Longer than a chunk (frames over ~1 KiB): the lane scheduler takes
        // inputs as lanes free up, so ask for all of them now.
        prefetch_inputs(inputs.get(16..).unwrap_or(&[]));
    }
    if inputs.iter().any(|inp| inp.len() > DEEP_CHUNKS * CHUNK_LEN) {
        // Rare: keep the lanes' state small for the common case.
        return drive::<{ portable::LANES }, DEEP_DEPTH>(inputs, out, &kernel_portable());
    }
    dispatch::<LANE_DEPTH>(level, inputs, out)
}

/// One-block messages under one key and one mode: `blocks[i]` holds
/// message `i`'s first `len` (≤ 64) bytes, zero-padded to the block, and
/// `out[i]` receives its hash's first 32 bytes, as [`hash_many`] would
/// give for `Input::padded(key, mode, &blocks[i], len)`. A burst's lineage
/// folds (17 bytes under the lineage context) and key derivations (64
/// bytes under the packet-key context) are such batches; on AVX-512 and
/// AVX2 the kernels (`x86::blocks16`, `x86::blocks8`) load each block
/// straight from `blocks`, with the key broadcast and one length and one
/// flag word for every lane: none of the per-lane choices a batch of
/// `Input`s needs (on AVX-512, `mnp-bench pipeline` at 128 B 63.9 → 61.8 ns,
/// docs/performance.md, fifteenth round).
pub fn hash_blocks(
    level: Level,
    key: &[u32; 8],
    mode: u32,
    len: usize,
    blocks: &[[u8; BLOCK_LEN]],
    out: &mut [[u8; 32]],
) {
    let len = len.min(BLOCK_LEN);
    #[cfg(target_arch = "x86_64")]
    {
        type Blocks = fn(&[u32; 8], u32, usize, &[[u8; BLOCK_LEN]], &mut [[u8; 32]]);
        let kernel: Option<(usize, Blocks)> = match level.or_supported() {
            Level::Avx512 => Some((16, x86::blocks16)),
            Level::Avx2 => Some((8, x86::blocks8)),
            _ => None,
        };
        if let Some((lanes, run)) = kernel {
            for (b, o) in blocks.chunks(lanes).zip(out.chunks_mut(lanes)) {
                run(key, mode, len, b, o);
            }
            return;
        }
    }
    const AT_ONCE: usize = 64;
    for (b, o) in blocks.chunks(AT_ONCE).zip(out.chunks_mut(AT_ONCE)) {
        let mut inputs = [Input::EMPTY; AT_ONCE];
        for (inp, blk) in inputs.iter_mut().zip(b) {
            *inp = Input::padded(key, mode, blk, len);
        }
        hash_many(level, &inputs[..b.len()], o);
    }
}

/// `hash_many` for messages of at most two chunks, `k.lanes` at a time, on
/// the chunk kernel `k`: a batch's one-chunk messages as roots; its two-chunk
/// ones in one call of the kernel's `two` (chunk 0, their first 1024 bytes,
/// so all of one length; chunk 1, the rest; then their root parents, each
/// the two chunks' CVs under the same key, taken where they are, in
/// registers). A batch whose messages all have two chunks (a burst's MACs
/// of 1518-byte frames) goes to `two` as it is; only a mixed one is sorted
/// first. The lane scheduler (`drive`) runs such messages at 1.7 × the
/// one-chunk cost per block.
#[cfg(target_arch = "x86_64")]
fn two_chunks(k: ChunkKernel, inputs: &[Input], out: &mut [[u8; 32]]) {
    debug_assert!(inputs.iter().all(|inp| inp.len() <= 2 * CHUNK_LEN));
    let mut next = inputs.chunks(k.lanes).skip(1);
    // The first batch's lines again: `hash_many` asked for them a moment
    // ago. Asked once only, the 1518 B gateway forwarded less in 4 of 4
    // alternating rounds (perhaps a second ask recovers prefetches dropped
    // on a full miss queue; docs/performance.md, twentieth round).
    prefetch_inputs(&inputs[..inputs.len().min(k.lanes)]);
    for (batch, outs) in inputs.chunks(k.lanes).zip(out.chunks_mut(k.lanes)) {
        if let Some(n) = next.next() {
            prefetch_inputs(n);
        }
        // `k.two` takes only messages of two chunks: longer than CHUNK_LEN
        // by this test and the sort below, at most twice it as asserted.
        if batch.iter().all(|inp| inp.len() > CHUNK_LEN) {
            (k.two)(batch, outs);
            continue;
        }
        // Which lanes have one chunk and which two, each kept in order.
        let (mut short, mut long) = ([0usize; 16], [0usize; 16]);
        let (mut ns, mut nl) = (0, 0);
        for (l, inp) in batch.iter().enumerate() {
            if inp.len() <= CHUNK_LEN {
                short[ns] = l;
                ns += 1;
            } else {
                long[nl] = l;
                nl += 1;
            }
        }
        let mut res = [[0u8; 32]; 16];
        if ns > 0 {
            let mut ins = [Input::EMPTY; 16];
            for (i, &l) in ins.iter_mut().zip(&short[..ns]) {
                *i = batch[l];
            }
            (k.run)(&ins[..ns], &mut res[..ns], Node::Root);
            for (r, &l) in res[..ns].iter().zip(&short[..ns]) {
                if let Some(o) = outs.get_mut(l) {
                    *o = *r;
                }
            }
        }
        if nl == 0 {
            continue;
        }
        let mut ins = [Input::EMPTY; 16];
        for (i, &l) in ins.iter_mut().zip(&long[..nl]) {
            *i = batch[l];
        }
        (k.two)(&ins[..nl], &mut res[..nl]);
        for (r, &l) in res[..nl].iter().zip(&long[..nl]) {
            if let Some(o) = outs.get_mut(l) {
                *o = *r;
            }
        }
    }
}

/// Up to 16 root parents: `out[i]` over `left[i]` then `right[i]` (two
/// chunks' CVs, one 64-byte block) under `kms[i]`'s key, in its mode,
/// `k.lanes` per kernel call.
#[cfg(target_arch = "x86_64")]
fn parents(
    k: ChunkKernel,
    kms: &[(&[u32; 8], u32)],
    left: &[[u8; 32]],
    right: &[[u8; 32]],
    out: &mut [[u8; 32]],
) {
    let mut blocks = [[0u8; BLOCK_LEN]; 16];
    for (blk, (a, b)) in blocks.iter_mut().zip(left.iter().zip(right)) {
        blk[..32].copy_from_slice(a);
        blk[32..].copy_from_slice(b);
    }
    let mut nodes = [Input::EMPTY; 16];
    for ((p, blk), (key, mode)) in nodes.iter_mut().zip(&blocks).zip(kms) {
        *p = Input::padded(key, mode | PARENT, blk, BLOCK_LEN);
    }
    let n = kms.len().min(16).min(out.len());
    for (batch, outs) in nodes[..n].chunks(k.lanes).zip(out.chunks_mut(k.lanes)) {
        (k.run)(batch, outs, Node::RootParent);
    }
}

#[cfg(target_arch = "x86_64")]
fn kernel16() -> Kernel<16> {
    Kernel {
        gather: x86::gather16,
        keys: x86::keys16,
        compress: x86::compress16,
        compress_rows: x86::compress16_rows,
        stage: stage_for(),
    }
}

#[cfg(target_arch = "x86_64")]
fn kernel8() -> Kernel<8> {
    Kernel {
        gather: x86::gather8,
        keys: x86::keys8,
        compress: x86::compress8,
        compress_rows: |rows, s| {
            x86::gather8(rows, &mut s.msg);
            x86::compress8(s);
        },
        stage: stage_for(),
    }
}

fn kernel_portable() -> Kernel<{ portable::LANES }> {
    Kernel {
        gather: gather_scalar,
        keys: keys_scalar,
        compress: portable::compress,
        compress_rows: |rows, s| {
            gather_scalar(rows, &mut s.msg);
            portable::compress(s);
        },
        stage: stage_scalar,
    }
}

fn dispatch<const D: usize>(level: Level, inputs: &[Input], out: &mut [[u8; 32]]) {
    match level.or_supported() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => drive::<16, D>(inputs, out, &kernel16()),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => drive::<8, D>(inputs, out, &kernel8()),
        _ => drive::<{ portable::LANES }, D>(inputs, out, &kernel_portable()),
    }
}

/// Messages of at most one chunk, `L` at a time, in lock step: block `b`
/// of every lane in one compression, each lane's CV kept when its own last
/// block is done (shorter lanes then idle on a zero block until the longest
/// ends). No CV stack and no per-lane scheduling: per step only the block
/// pointers, lengths and flags change.
fn chunk_sync<const L: usize>(
    inputs: &[Input],
    out: &mut [[u8; 32]],
    k: &Kernel<L>,
    scatter: fn(&[[u32; L]; 8], &mut [[u8; 32]]),
) {
    let mut pads = [[0u8; BLOCK_LEN]; L];
    let mut step = Step::<L>::new();
    let mut done = [[0u32; L]; 8];
    for (batch, outs) in inputs.chunks(L).zip(out.chunks_mut(L)) {
        // One pass over the batch: each lane's blocks, the longest, and
        // whether every lane has the first's key, or its length and mode.
        let first = &batch[0];
        let first_len = first.len();
        let mut blocks = [0usize; L];
        let mut most = 0;
        let mut same_key = true;
        // Every lane the same length and mode (a burst of equal frames, every
        // key derivation, every lineage fold): each step's lengths and flags
        // are one value, stored whole — per-lane stores read back as one
        // vector would stall on store forwarding at every block.
        let mut uniform = batch.len() == L;
        for (b, inp) in blocks.iter_mut().zip(batch) {
            let len = inp.len();
            *b = len.div_ceil(BLOCK_LEN).max(1);
            most = most.max(*b);
            same_key &= std::ptr::eq(inp.key, first.key);
            uniform &= len == first_len && inp.mode == first.mode;
        }
        if same_key {
            for w in 0..8 {
                step.cv[w] = [first.key[w]; L];
            }
        } else {
            let mut keys: [&[u32; 8]; L] = [&IV; L];
            for (k, inp) in keys.iter_mut().zip(batch) {
                *k = inp.key;
            }
            (k.keys)(&keys, &mut step.cv);
        }
        let ends_together = blocks[..batch.len()].iter().all(|&n| n == most);
        // Counters stay 0: a one-chunk message is chunk 0.
        for b in 0..most {
            // Each lane's block, read in place or staged in its own pad.
            let mut rows: [&[u8; BLOCK_LEN]; L] = [&ZERO_BLOCK; L];
            if uniform {
                // One length and one set of flags; per lane only the row.
                let (n, f) = block_len_flags(first, first_len, b, most);
                step.block_len = [n; L];
                step.flags = [f; L];
                for ((row, inp), pad) in rows.iter_mut().zip(batch).zip(pads.iter_mut()) {
                    *row = block_row(inp, b, n, pad, k.stage);
                }
                (k.compress_rows)(&rows, &mut step);
                continue;
            }
            for ((l, inp), pad) in batch.iter().enumerate().zip(pads.iter_mut()) {
                if b >= blocks[l] {
                    step.flags[l] = 0;
                    step.block_len[l] = 0;
                    continue;
                }
                let (n, f) = block_len_flags(inp, inp.len(), b, blocks[l]);
                rows[l] = block_row(inp, b, n, pad, k.stage);
                step.block_len[l] = n;
                step.flags[l] = f;
            }
            (k.compress_rows)(&rows, &mut step);
            // Keep the CV of every lane whose message ended with this block
            // (where all end with the last, their CVs are the step's).
            if !ends_together {
                for l in 0..batch.len() {
                    if blocks[l] == b + 1 {
                        for w in 0..8 {
                            done[w][l] = step.cv[w][l];
                        }
                    }
                }
            }
        }
        scatter(if ends_together { &step.cv } else { &done }, outs);
    }
}

/// The length and flags of block `b` of a one-chunk message of `len`
/// bytes and `blocks` blocks.
#[inline(always)]
fn block_len_flags(inp: &Input, len: usize, b: usize, blocks: usize) -> (u32, u32) {
    let n = len.saturating_sub(b * BLOCK_LEN).min(BLOCK_LEN);
    let mut f = inp.mode;
    if b == 0 {
        f |= CHUNK_START;
    }
    if b + 1 == blocks {
        f |= CHUNK_END | ROOT;
    }
    (n as u32, f)
}

/// The 64 bytes of block `b` (of length `n`): the caller's padded block, in
/// place when whole inside one piece, else staged zero-padded in `pad`.
#[inline(always)]
fn block_row<'p>(
    inp: &Input<'p>,
    b: usize,
    n: u32,
    pad: &'p mut [u8; BLOCK_LEN],
    stage: Stage,
) -> &'p [u8; BLOCK_LEN] {
    let start = b * BLOCK_LEN;
    if let Some(w) = inp.whole {
        return w;
    }
    if n as usize == BLOCK_LEN {
        if let Some(row) = inp.direct(start) {
            return row;
        }
    }
    stage(inp, start, pad);
    pad
}

/// CVs back to bytes, lane by lane (the portable and AVX2 paths).
fn scatter_scalar<const L: usize>(cv: &[[u32; L]; 8], outs: &mut [[u8; 32]]) {
    for (l, o) in outs.iter_mut().enumerate() {
        for w in 0..8 {
            o[4 * w..4 * w + 4].copy_from_slice(&cv[w][l].to_le_bytes());
        }
    }
}

/// CVs back to bytes for 16 lanes: two in-register 8×8 transposes
/// stored straight into the outputs.
#[cfg(target_arch = "x86_64")]
fn scatter_avx512(cv: &[[u32; 16]; 8], outs: &mut [[u8; 32]]) {
    x86::scatter16(cv, outs)
}

impl<'a> Input<'a> {
    /// Block starting at `start` if it lies whole inside one piece.
    #[inline(always)]
    fn direct(&self, start: usize) -> Option<&'a [u8; BLOCK_LEN]> {
        let h = self.head.len();
        let piece = if start + BLOCK_LEN <= h {
            &self.head[start..]
        } else if start >= h {
            self.tail.get(start - h..)?
        } else {
            return None;
        };
        piece.get(..BLOCK_LEN)?.try_into().ok()
    }
}

pub(crate) const ZERO_BLOCK: [u8; BLOCK_LEN] = [0; BLOCK_LEN];

/// Keep up to `L` lanes busy until every input is hashed.
// Long by design: the lane scheduler is one loop whose state (lane slots, CV stacks, block cursors) stays in registers; split, it would pass that state through memory on every block.
fn drive<const L: usize, const D: usize>(inputs: &[Input], out: &mut [[u8; 32]], k: &Kernel<L>) {
    let mut lanes = [Lane::IDLE; L];
    let mut stacks = [[[0u32; 8]; D]; L];
    let mut pads = [[0u8; BLOCK_LEN]; L];
    let mut step = Step::<L>::new();
    let mut next = 0;
    loop {
        // Fill idle lanes and describe each busy lane's next compression.
        // A lane's block is either read in place from its message or staged
        // in its pad (partial blocks, blocks straddling the two pieces,
        // parent nodes); `direct` records which.
        let mut busy = 0;
        let mut direct: [Option<&[u8; BLOCK_LEN]>; L] = [None; L];
        for l in 0..L {
            if lanes[l].phase == Phase::Idle && next < inputs.len() {
                let len = inputs[next].len();
                lanes[l] = Lane {
                    phase: Phase::Chunk,
                    input: next,
                    len,
                    chunks: (len.div_ceil(CHUNK_LEN)).max(1) as u64,
                    ..Lane::IDLE
                };
                next += 1;
            }
            let lane = &mut lanes[l];
            if lane.phase == Phase::Idle {
                step.flags[l] = 0;
                direct[l] = Some(&ZERO_BLOCK);
                continue;
            }
            busy += 1;
            let inp = &inputs[lane.input];
            match lane.phase {
                Phase::Chunk => {
                    let chunk_start = lane.chunk as usize * CHUNK_LEN;
                    let chunk_len = (lane.len - chunk_start).min(CHUNK_LEN);
                    let blocks = chunk_len.div_ceil(BLOCK_LEN).max(1);
                    let start = chunk_start + lane.block * BLOCK_LEN;
                    let n = (lane.len - start).min(BLOCK_LEN);
                    direct[l] = if n == BLOCK_LEN {
                        inp.direct(start)
                    } else {
                        None
                    };
                    if direct[l].is_none() {
                        (k.stage)(inp, start, &mut pads[l]);
                    }
                    let mut f = inp.mode;
                    if lane.block == 0 {
                        f |= CHUNK_START;
                        for w in 0..8 {
                            step.cv[w][l] = inp.key[w];
                        }
                    }
                    if lane.block == blocks - 1 {
                        f |= CHUNK_END;
                        if lane.chunks == 1 {
                            f |= ROOT;
                        }
                    }
                    step.counter_lo[l] = lane.chunk as u32;
                    step.counter_hi[l] = (lane.chunk >> 32) as u32;
                    step.block_len[l] = n as u32;
                    step.flags[l] = f;
                }
                Phase::Merge(_) | Phase::Finalize => {
                    lane.sp -= 1;
                    let left = stacks[l][lane.sp];
                    for w in 0..8 {
                        pads[l][4 * w..4 * w + 4].copy_from_slice(&left[w].to_le_bytes());
                        pads[l][32 + 4 * w..36 + 4 * w]
                            .copy_from_slice(&lane.carry[w].to_le_bytes());
                        step.cv[w][l] = inp.key[w];
                    }
                    let mut f = inp.mode | PARENT;
                    if lane.phase == Phase::Finalize && lane.sp == 0 {
                        f |= ROOT;
                    }
                    step.counter_lo[l] = 0;
                    step.counter_hi[l] = 0;
                    step.block_len[l] = BLOCK_LEN as u32;
                    step.flags[l] = f;
                }
                Phase::Idle => {}
            }
            lane.flags = step.flags[l];
        }
        if busy == 0 {
            return;
        }
        let rows: [&[u8; BLOCK_LEN]; L] = std::array::from_fn(|l| direct[l].unwrap_or(&pads[l]));
        (k.gather)(&rows, &mut step.msg);
        (k.compress)(&mut step);
        // Advance each busy lane with the CV it got back.
        for l in 0..L {
            let lane = &mut lanes[l];
            if lane.phase == Phase::Idle {
                continue;
            }
            if lane.phase == Phase::Chunk && lane.flags & CHUNK_END == 0 {
                // Mid-chunk: the CV stays in the step for the next block.
                lane.block += 1;
                continue;
            }
            let mut cv = [0u32; 8];
            for w in 0..8 {
                cv[w] = step.cv[w][l];
            }
            if lane.flags & ROOT != 0 {
                if let Some(o) = out.get_mut(lane.input) {
                    for w in 0..8 {
                        o[4 * w..4 * w + 4].copy_from_slice(&cv[w].to_le_bytes());
                    }
                }
                lane.phase = Phase::Idle;
                continue;
            }
            match lane.phase {
                Phase::Chunk => {
                    lane.block = 0;
                    if lane.chunk + 1 < lane.chunks {
                        // A chunk with more to follow: merge per the count of chunks so far.
                        let merges = (lane.chunk + 1).trailing_zeros();
                        lane.chunk += 1;
                        if merges == 0 {
                            stacks[l][lane.sp] = cv;
                            lane.sp += 1;
                        } else {
                            lane.carry = cv;
                            lane.phase = Phase::Merge(merges);
                        }
                    } else {
                        lane.carry = cv;
                        lane.phase = Phase::Finalize;
                    }
                }
                Phase::Merge(left) => {
                    if left > 1 {
                        lane.carry = cv;
                        lane.phase = Phase::Merge(left - 1);
                    } else {
                        stacks[l][lane.sp] = cv;
                        lane.sp += 1;
                        lane.phase = Phase::Chunk;
                    }
                }
                Phase::Finalize => lane.carry = cv,
                Phase::Idle => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(key, msg).as_bytes()
    }

    fn levels() -> Vec<Level> {
        [Level::Portable, Level::Avx2, Level::Avx512]
            .into_iter()
            .filter(|l| l.is_supported())
            .collect()
    }

    #[test]
    fn this_cpu_runs_the_level_it_reports() {
        // On the project's machines (AVX-512) the AVX-512 path must be the one
        // that runs by default, not a silent fallback.
        let has512 = std::arch::is_x86_feature_detected!("avx512f");
        assert_eq!(Level::supported() == Level::Avx512, has512);
        if has512 && std::env::var("MNP_SIMD").is_err() {
            assert_eq!(Level::current(), Level::Avx512);
        }
    }

    /// The masked-load staging writes exactly what `Input::block` does, for
    /// every split of a message into two pieces and every block start.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn staged_blocks_match_the_portable_staging() {
        let stage = stage_for();
        let msg: Vec<u8> = (0..200u32).map(|i| (i * 7 + 1) as u8).collect();
        for len in [0usize, 1, 21, 56, 63, 64, 65, 78, 127, 128, 129, 200] {
            for split in 0..=len {
                let inp = Input {
                    tail: &msg[split..len],
                    ..Input::keyed(&IV, &msg[..split])
                };
                for start in (0..len.max(1)).step_by(BLOCK_LEN) {
                    let (mut want, mut got) = ([0xAAu8; BLOCK_LEN], [0x55u8; BLOCK_LEN]);
                    inp.block(start, &mut want);
                    stage(&inp, start, &mut got);
                    assert_eq!(got, want, "len {len} split {split} start {start}");
                }
            }
        }
    }

    /// The 16-lane chunk-synchronous path that AVX-512F CPUs without
    /// AVX-512BW take (this machine takes `x86::chunk16`): equal to the crate
    /// on mixed one-chunk batches.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn chunk_sync_16_without_avx512bw_matches_the_crate() {
        if !Level::Avx512.is_supported() {
            return;
        }
        let msg: Vec<u8> = (0..1024u32).map(|i| (i * 11 + 3) as u8).collect();
        let keys: Vec<[u8; 32]> = (0..37).map(|i| [i as u8; 32]).collect();
        let kw: Vec<[u32; 8]> = keys.iter().map(words).collect();
        for lens in [vec![70usize; 37], (0..37).map(|i| i * 27 % 1025).collect()] {
            let inputs: Vec<Input> = lens
                .iter()
                .zip(&kw)
                .map(|(&n, k)| Input {
                    tail: &msg[n / 3..n],
                    ..Input::keyed(k, &msg[..n / 3])
                })
                .collect();
            let mut out = vec![[0u8; 32]; inputs.len()];
            chunk_sync::<16>(&inputs, &mut out, &kernel16(), scatter_avx512);
            for (i, &n) in lens.iter().enumerate() {
                assert_eq!(out[i], reference(&keys[i], &msg[..n]), "len {n}");
            }
        }
    }

    /// Messages held zero-padded in a block (`Input::padded`, as the
    /// lineage folds are) hash as the reference does, alone and in batches
    /// mixed with two-piece messages of other lengths.
    #[test]
    fn padded_blocks_mixed_with_two_piece_messages_every_level() {
        let key = [9u8; 32];
        let kw = words(&key);
        let long: Vec<u8> = (0..300u32).map(|i| (i * 13 + 5) as u8).collect();
        let mut blocks = vec![[0u8; BLOCK_LEN]; 40];
        for (i, b) in blocks.iter_mut().enumerate() {
            for (j, x) in b[..i % 65].iter_mut().enumerate() {
                *x = (i * 31 + j) as u8 | 1;
            }
        }
        for level in levels() {
            let inputs: Vec<Input> = (0..40)
                .map(|i| match i % 3 {
                    0 => Input::padded(&kw, KEYED_HASH, &blocks[i], i % 65),
                    _ => Input {
                        tail: &long[i..i * 7],
                        ..Input::keyed(&kw, &long[..i])
                    },
                })
                .collect();
            let mut out = vec![[0u8; 32]; inputs.len()];
            hash_many(level, &inputs, &mut out);
            for (i, inp) in inputs.iter().enumerate() {
                let msg = [inp.head, inp.tail].concat();
                assert_eq!(out[i], reference(&key, &msg), "{level:?} input {i}");
            }
        }
    }

    /// Keyed hashes and plain ones (IV, mode 0) of two chunks in one
    /// batch, lanes sharing a key and not, some ending in a partial block:
    /// each root parent takes its own lane's key and mode.
    #[test]
    fn two_chunk_messages_of_mixed_modes_and_keys_every_level() {
        let keys: Vec<[u8; 32]> = (0..20u8).map(|i| [i / 3 + 1; 32]).collect();
        let kw: Vec<[u32; 8]> = keys.iter().map(words).collect();
        let msgs: Vec<Vec<u8>> = (0..20usize)
            .map(|i| (0..1025 + i * 51).map(|j| (j * 11 + i) as u8).collect())
            .collect();
        for level in levels() {
            for head in [0, 56, 1024, 1100] {
                let inputs: Vec<Input> = msgs
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let h = head.min(m.len());
                        let (key, mode) = if i % 4 == 3 {
                            (&IV, 0)
                        } else {
                            (&kw[i], KEYED_HASH)
                        };
                        Input {
                            tail: &m[h..],
                            ..Input::new(key, mode, &m[..h])
                        }
                    })
                    .collect();
                let mut out = vec![[0u8; 32]; inputs.len()];
                hash_many(level, &inputs, &mut out);
                for (i, m) in msgs.iter().enumerate() {
                    let want = if i % 4 == 3 {
                        *blake3::hash(m).as_bytes()
                    } else {
                        reference(&keys[i], m)
                    };
                    assert_eq!(out[i], want, "{level:?} head {head} input {i}");
                }
            }
        }
    }

    /// A two-chunk message from its chunks' CVs (`chunk_cvs`, then
    /// `root_parents`) is the crate's hash of the whole message, for every
    /// length of the second chunk; a level without the tree steps says so.
    #[test]
    fn tree_steps_rebuild_two_chunk_messages() {
        for level in levels() {
            let lens: Vec<usize> = vec![1025, 1030, 1087, 1088, 1500, 2047, 2048];
            let msgs: Vec<Vec<u8>> = lens
                .iter()
                .map(|n| (0..*n).map(|i| (i * 7 + n) as u8).collect())
                .collect();
            let keys: Vec<[u8; 32]> = (0..lens.len()).map(|i| [i as u8 + 1; 32]).collect();
            let kw: Vec<[u32; 8]> = keys.iter().map(words).collect();
            let firsts: Vec<Input> = msgs
                .iter()
                .zip(&kw)
                .map(|(m, k)| Input::keyed(k, &m[..CHUNK_LEN]))
                .collect();
            let seconds: Vec<Input> = msgs
                .iter()
                .zip(&kw)
                .map(|(m, k)| Input::keyed(k, &m[CHUNK_LEN..]))
                .collect();
            let (mut l, mut r) = (vec![[0u8; 32]; lens.len()], vec![[0u8; 32]; lens.len()]);
            let mut out = vec![[0u8; 32]; lens.len()];
            let key_refs: Vec<&[u32; 8]> = kw.iter().collect();
            let ran = chunk_cvs(level, &firsts, 0, &mut l)
                && chunk_cvs(level, &seconds, 1, &mut r)
                && root_parents(level, &key_refs, KEYED_HASH, &l, &r, &mut out);
            assert_eq!(ran, tree_steps(level), "{level:?}");
            if !ran {
                continue;
            }
            for i in 0..lens.len() {
                assert_eq!(
                    out[i],
                    reference(&keys[i], &msgs[i]),
                    "{level:?} len {}",
                    lens[i]
                );
            }
        }
    }

    #[test]
    fn edge_lengths_every_level() {
        let lens = [
            0usize, 1, 63, 64, 65, 127, 128, 1023, 1024, 1025, 2047, 2048, 2049, 3072, 4096, 4097,
            5000, 9000, 16384, 17000,
        ];
        for level in levels() {
            let keys: Vec<[u8; 32]> = (0..lens.len()).map(|i| [i as u8 ^ 0x5a; 32]).collect();
            let msgs: Vec<Vec<u8>> = lens
                .iter()
                .map(|n| (0..*n).map(|i| (i * 31 + n) as u8).collect())
                .collect();
            let kw: Vec<[u32; 8]> = keys.iter().map(words).collect();
            let inputs: Vec<Input> = msgs
                .iter()
                .zip(&kw)
                .map(|(m, k)| Input::keyed(k, m))
                .collect();
            let mut out = vec![[0u8; 32]; inputs.len()];
            hash_many(level, &inputs, &mut out);
            for i in 0..lens.len() {
                assert_eq!(
                    out[i],
                    reference(&keys[i], &msgs[i]),
                    "{level:?} len {}",
                    lens[i]
                );
            }
        }
    }

    #[test]
    fn derive_key_matches_the_crate() {
        let ck = context_key("mnp-gateway v1 packet key");
        let material: Vec<[u8; 64]> = (0..40).map(|i| [i as u8; 64]).collect();
        for level in levels() {
            let inputs: Vec<Input> = material
                .iter()
                .map(|m| Input::new(&ck, DERIVE_KEY_MATERIAL, &m[..]))
                .collect();
            let mut out = vec![[0u8; 32]; inputs.len()];
            hash_many(level, &inputs, &mut out);
            for (m, o) in material.iter().zip(&out) {
                assert_eq!(
                    *o,
                    blake3::derive_key("mnp-gateway v1 packet key", m),
                    "{level:?}"
                );
            }
        }
    }

    /// One-block batches under one key (`hash_blocks`), every length a
    /// block holds and batch sizes around the lane counts, keyed and
    /// derived, at every level: equal to the crate.
    #[test]
    fn one_block_batches_equal_the_crate() {
        let context = "mnp-gateway v1 lineage";
        let ck = context_key(context);
        let key = [0x3cu8; 32];
        let kw = words(&key);
        for len in 0..=BLOCK_LEN {
            for count in [0usize, 1, 7, 8, 9, 16, 17, 64, 65] {
                let blocks: Vec<[u8; BLOCK_LEN]> = (0..count)
                    .map(|i| {
                        let mut b = [0u8; BLOCK_LEN];
                        for (j, x) in b[..len].iter_mut().enumerate() {
                            *x = (i * 31 + j * 7 + len) as u8;
                        }
                        b
                    })
                    .collect();
                for level in levels() {
                    let mut out = vec![[0u8; 32]; count];
                    hash_blocks(level, &kw, KEYED_HASH, len, &blocks, &mut out);
                    for (b, o) in blocks.iter().zip(&out) {
                        assert_eq!(
                            *o,
                            reference(&key, &b[..len]),
                            "{level:?} len {len} count {count}"
                        );
                    }
                    hash_blocks(level, &ck, DERIVE_KEY_MATERIAL, len, &blocks, &mut out);
                    for (b, o) in blocks.iter().zip(&out) {
                        assert_eq!(
                            *o,
                            blake3::derive_key(context, &b[..len]),
                            "{level:?} len {len} count {count}"
                        );
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        /// One-chunk batches (the chunk-synchronous kernels): random lane
        /// counts, lengths 0..=1024 or all one length, one shared key or a
        /// key per message, two pieces split anywhere: equal to the crate.
        #[test]
        fn one_chunk_batches_equal_the_crate(
            lens in proptest::collection::vec(0usize..=1024, 1..40),
            one_len in any::<bool>(),
            shared_key in any::<bool>(),
            seed in any::<u8>(),
            split in any::<prop::sample::Index>(),
        ) {
            let lens: Vec<usize> = if one_len { vec![lens[0]; lens.len()] } else { lens };
            let msgs: Vec<Vec<u8>> = lens.iter().enumerate()
                .map(|(i, n)| (0..*n).map(|j| (j as u8).wrapping_mul(seed | 1) ^ i as u8).collect())
                .collect();
            let keys: Vec<[u8; 32]> = (0..msgs.len())
                .map(|i| [if shared_key { seed } else { seed.wrapping_add(i as u8) }; 32])
                .collect();
            let kw: Vec<[u32; 8]> = keys.iter().map(words).collect();
            for level in levels() {
                let inputs: Vec<Input> = msgs.iter().enumerate().map(|(i, m)| {
                    let at = split.index(m.len() + 1);
                    let k = if shared_key { &kw[0] } else { &kw[i] };
                    Input { tail: &m[at..], ..Input::keyed(k, &m[..at]) }
                }).collect();
                let mut out = vec![[0u8; 32]; inputs.len()];
                hash_many(level, &inputs, &mut out);
                for i in 0..msgs.len() {
                    prop_assert_eq!(out[i], reference(&keys[i], &msgs[i]), "{:?} len {}", level, msgs[i].len());
                }
            }
        }
    }

    /// Every level's `hash_many` of `msgs`, each split at `split` into
    /// two pieces, equals the crate's hash of the whole message.
    fn split_batches_equal_the_crate(
        msgs: &[&[u8]],
        keys: &[[u8; 32]],
        kw: &[[u32; 8]],
        split: prop::sample::Index,
    ) -> Result<(), TestCaseError> {
        for level in levels() {
            let inputs: Vec<Input> = msgs
                .iter()
                .zip(kw)
                .map(|(m, k)| {
                    let at = split.index(m.len() + 1);
                    Input {
                        tail: &m[at..],
                        ..Input::keyed(k, &m[..at])
                    }
                })
                .collect();
            let mut out = vec![[0u8; 32]; inputs.len()];
            hash_many(level, &inputs, &mut out);
            for i in 0..msgs.len() {
                prop_assert_eq!(
                    out[i],
                    reference(&keys[i], msgs[i]),
                    "{:?} len {}",
                    level,
                    msgs[i].len()
                );
            }
        }
        Ok(())
    }

    /// A batch of one length and one split point (every lane's head the
    /// same length, as a burst's MAC inputs are), each level against the
    /// crate: on AVX2, where the head length is a multiple of 4, these go
    /// through the masked-load path (`x86::chunk8_split`).
    fn one_split_equals_the_crate(len: usize, at: usize, lanes: usize, seed: u8, same_key: bool) {
        let msgs: Vec<Vec<u8>> = (0..lanes)
            .map(|i| {
                (0..len)
                    .map(|j| (j as u8).wrapping_mul(seed | 1) ^ i as u8)
                    .collect()
            })
            .collect();
        let keys: Vec<[u8; 32]> = (0..lanes)
            .map(|i| {
                [if same_key {
                    seed
                } else {
                    seed.wrapping_add(i as u8)
                }; 32]
            })
            .collect();
        let kw: Vec<[u32; 8]> = keys.iter().map(words).collect();
        for level in levels() {
            let inputs: Vec<Input> = msgs
                .iter()
                .zip(&kw)
                .map(|(m, k)| Input {
                    tail: &m[at..],
                    ..Input::keyed(k, &m[..at])
                })
                .collect();
            let mut out = vec![[0u8; 32]; lanes];
            hash_many(level, &inputs, &mut out);
            for i in 0..lanes {
                assert_eq!(
                    out[i],
                    reference(&keys[i], &msgs[i]),
                    "{level:?} len {len} split {at} lanes {lanes}"
                );
            }
        }
    }

    #[test]
    fn one_split_batches_every_length_near_the_mac_shape() {
        for len in 0..=200 {
            for at in [0, 4, 8, 52, 56, 60, 64, 68, 128] {
                for lanes in [1, 3, 8, 9, 17] {
                    if at <= len {
                        one_split_equals_the_crate(len, at, lanes, len as u8, lanes % 2 == 0);
                    }
                }
            }
        }
    }

    /// Batches of one shape past one chunk (a burst's MACs of 1518-byte
    /// frames: a 56-byte head, then the payload), through both kernels'
    /// split and shaped bodies: heads that end in chunk 0, at its end, in
    /// chunk 1; lengths ending on a block, in a block, in a word.
    #[test]
    fn one_split_two_chunk_batches_every_level() {
        for len in [1025, 1027, 1028, 1087, 1088, 1100, 1444, 1446, 2047, 2048] {
            for at in [0, 4, 56, 60, 1024, 1028, 1101] {
                for lanes in [1, 8, 9, 17] {
                    if at <= len {
                        one_split_equals_the_crate(len, at, lanes, len as u8, lanes % 2 == 0);
                    }
                }
            }
        }
    }

    /// Pieces laid against inaccessible pages, so a load that reads one
    /// byte outside its piece faults: each piece's end just before a guard
    /// page, and each piece's start just after one (a masked load's
    /// unselected dwords lie before the tail it reads). Every level
    /// against the crate.
    #[test]
    fn pieces_against_guard_pages_are_read_only_inside() {
        const PAGE: usize = 4096;
        // SAFETY: a private anonymous mapping of three inaccessible pages,
        // released below; only the middle one is made accessible.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                3 * PAGE,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let base = base.cast::<u8>();
        // SAFETY: page 1 of the mapping above.
        let rw = unsafe {
            libc::mprotect(
                base.add(PAGE).cast(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        assert_eq!(rw, 0);
        // SAFETY: page 1 is readable and writable, PAGE bytes.
        let page = unsafe { std::slice::from_raw_parts_mut(base.add(PAGE), PAGE) };
        for len in [1usize, 3, 14, 22, 63, 64, 65, 78, 100, 150] {
            for at in [0usize, 4, 8, 56, 60].into_iter().filter(|&a| a <= len) {
                let msg: Vec<u8> = (0..len).map(|j| (j * 7 + len) as u8).collect();
                let key = [len as u8; 32];
                let kw = words(&key);
                let tail_len = len - at;
                for tail_first in [false, true] {
                    page.fill(0xa5);
                    // The tail at the page's start and the head ending at
                    // its end, or the head at the start and the tail
                    // ending at the end.
                    let (h0, t0) = if tail_first {
                        (PAGE - at, 0)
                    } else {
                        (0, PAGE - tail_len)
                    };
                    page[h0..h0 + at].copy_from_slice(&msg[..at]);
                    page[t0..t0 + tail_len].copy_from_slice(&msg[at..]);
                    let page: &[u8] = page;
                    let inputs = vec![
                        Input {
                            tail: &page[t0..t0 + tail_len],
                            ..Input::keyed(&kw, &page[h0..h0 + at])
                        };
                        8
                    ];
                    let want = reference(&key, &msg);
                    for level in levels() {
                        let mut out = vec![[0u8; 32]; 8];
                        hash_many(level, &inputs, &mut out);
                        assert!(
                            out.iter().all(|o| *o == want),
                            "{level:?} len {len} split {at}"
                        );
                    }
                }
            }
        }
        // SAFETY: the mapping made above, no longer referenced.
        assert_eq!(unsafe { libc::munmap(base.cast(), 3 * PAGE) }, 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        /// One length and one split point for the whole batch (as a
        /// burst's MACs): equal to the crate.
        #[test]
        fn one_split_batches_equal_the_crate(
            len in 0usize..=1024,
            split in any::<prop::sample::Index>(),
            lanes in 1usize..=24,
            seed in any::<u8>(),
            same_key in any::<bool>(),
        ) {
            one_split_equals_the_crate(len, split.index(len + 1), lanes, seed, same_key);
        }

        /// Lengths 0..=2048 only, so the levels with a chunk kernel
        /// (AVX-512BW, AVX2) take the batch chunk by chunk (`two_chunks`):
        /// one- and two-chunk messages mixed,
        /// split anywhere, one key or many: equal to the crate.
        #[test]
        fn two_chunk_batches_equal_the_crate(
            lens in proptest::collection::vec(0usize..=2048, 1..40),
            seed in any::<u8>(),
            split in any::<prop::sample::Index>(),
            same_key in any::<bool>(),
        ) {
            let msgs: Vec<Vec<u8>> = lens.iter().enumerate()
                .map(|(i, n)| (0..*n).map(|j| (j as u8).wrapping_mul(seed | 1).wrapping_add(i as u8)).collect())
                .collect();
            let keys: Vec<[u8; 32]> = (0..msgs.len())
                .map(|i| [if same_key { seed } else { seed.wrapping_add(i as u8) }; 32])
                .collect();
            let kw: Vec<[u32; 8]> = keys.iter().map(words).collect();
            let msgs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            split_batches_equal_the_crate(&msgs, &keys, &kw, split)?;
        }

        /// Random keys, lengths 0..=9000, random lane counts, two-piece
        /// messages split anywhere, misaligned starts: equal to the crate.
        #[test]
        fn random_batches_equal_the_crate(
            lens in proptest::collection::vec(0usize..=9000, 1..40),
            seed in any::<u8>(),
            split in any::<prop::sample::Index>(),
            misalign in 0usize..8,
        ) {
            let storage: Vec<Vec<u8>> = lens.iter().enumerate()
                .map(|(i, n)| (0..n + misalign).map(|j| (j as u8).wrapping_mul(seed | 1).wrapping_add(i as u8)).collect())
                .collect();
            let msgs: Vec<&[u8]> = storage.iter().map(|s| &s[misalign..]).collect();
            let keys: Vec<[u8; 32]> = (0..msgs.len()).map(|i| [seed.wrapping_add(i as u8); 32]).collect();
            let kw: Vec<[u32; 8]> = keys.iter().map(words).collect();
            split_batches_equal_the_crate(&msgs, &keys, &kw, split)?;
        }
    }
}

//! x86_64 backends: 16 lanes in AVX-512 registers, 8 in AVX2. The rounds
//! of each are one `asm!` block: AVX-512's over all 32 registers
//! (`rounds16_asm!`), AVX2's over the 16 state rows with the message rows
//! in memory (`rounds8_asm!`); given the rounds as intrinsics, the compiler
//! spilled state between G functions at both widths.
//!
//! Every intrinsic is called inside a `#[target_feature]` function, and those
//! functions are reached only through `hash_many`, which dispatches to a level
//! after checking at run time that the CPU supports it (`Level::or_supported`);
//! the AVX-512BW row loads (`stage_block`, `chunk16`) only after
//! `has_avx512bw` found that extension too.

use super::{Input, Node, Step, BLOCK_LEN, CHUNK_LEN, IV};
use std::arch::x86_64::*;

/// Ask for every cache line of `bytes` ahead of use, non-temporally: a
/// frame's lines are read once here and soon written again by the peer that
/// owns the buffer (memif's zero-copy server writes into this worker's
/// mbufs), which then need not take them back from this core's caches
/// (measured: 1518-byte frames 0.87 → 1.57 Mpps, docs/performance.md).
#[inline]
pub(crate) fn prefetch(bytes: &[u8]) {
    if let Some(first) = bytes.first() {
        // The first line by its first byte (the byte itself, in the frame:
        // bound by value, `hint` was given a copy on the stack, and the
        // frame's first line was loaded, not asked for), then every later
        // line.
        hint(first);
        prefetch_after_first(bytes);
    }
}

/// [`prefetch`] for every line of `bytes` but the one holding its first
/// byte, which whoever located the bytes has read already (the pipeline's
/// parse stage reads the header that each MAC piece starts in).
#[inline]
pub(crate) fn prefetch_after_first(bytes: &[u8]) {
    // A pointer walk from the next line's start to the end: the count of
    // lines and an index loop over them cost more than the hints
    // (`range.rs` was 40 instructions a MAC, measured with callgrind).
    let p = bytes.as_ptr();
    let end = p.wrapping_add(bytes.len());
    let mut line = p.wrapping_add(64 - (p as usize & 63));
    while line < end {
        // SAFETY: `line` lies inside `bytes` (below `end`).
        hint(unsafe { &*line });
        line = line.wrapping_add(64);
    }
}

/// Ask for the line holding `x` into every cache level (`T0`): for the
/// tables a worker reads and then writes itself (the replay window).
#[inline]
pub(crate) fn prefetch_t0<T>(x: &T) {
    // SAFETY: as in `hint`: SSE is baseline, and a prefetch never faults
    // or changes memory.
    unsafe { _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast()) };
}

#[inline(always)]
fn hint(byte: &u8) {
    // SAFETY: SSE is part of the x86_64 baseline, so the intrinsic's target
    // feature is always present; a prefetch is a hint that never faults or
    // changes memory.
    unsafe { _mm_prefetch::<_MM_HINT_NTA>((byte as *const u8).cast()) };
}

/// Four G functions side by side on AVX-512 registers named by number, as
/// text for `asm!`: BLAKE3's column step (or diagonal step) with the state
/// words `a`, `b`, `c`, `d` of each G and its two message words `x`, `y`.
/// Each instruction writes its own first source, so nothing needs a
/// temporary register.
macro_rules! g4_asm {
    ([$($a:literal),*], [$($b:literal),*], [$($c:literal),*], [$($d:literal),*],
     [$($x:literal),*], [$($y:literal),*]) => {
        concat!(
            $("vpaddd zmm", $a, ", zmm", $a, ", zmm", $x, "\n",)*
            $("vpaddd zmm", $a, ", zmm", $a, ", zmm", $b, "\n",)*
            $("vpxord zmm", $d, ", zmm", $d, ", zmm", $a, "\n",)*
            $("vprord zmm", $d, ", zmm", $d, ", 16\n",)*
            $("vpaddd zmm", $c, ", zmm", $c, ", zmm", $d, "\n",)*
            $("vpxord zmm", $b, ", zmm", $b, ", zmm", $c, "\n",)*
            $("vprord zmm", $b, ", zmm", $b, ", 12\n",)*
            $("vpaddd zmm", $a, ", zmm", $a, ", zmm", $y, "\n",)*
            $("vpaddd zmm", $a, ", zmm", $a, ", zmm", $b, "\n",)*
            $("vpxord zmm", $d, ", zmm", $d, ", zmm", $a, "\n",)*
            $("vprord zmm", $d, ", zmm", $d, ", 8\n",)*
            $("vpaddd zmm", $c, ", zmm", $c, ", zmm", $d, "\n",)*
            $("vpxord zmm", $b, ", zmm", $b, ", zmm", $c, "\n",)*
            $("vprord zmm", $b, ", zmm", $b, ", 7\n",)*
        )
    };
}

/// One round as `asm!` text: the state in zmm0..zmm15, and the registers
/// of this round's message words in schedule order (zmm16 + word).
macro_rules! round_asm {
    ($m0:literal, $m1:literal, $m2:literal, $m3:literal, $m4:literal, $m5:literal,
     $m6:literal, $m7:literal, $m8:literal, $m9:literal, $m10:literal, $m11:literal,
     $m12:literal, $m13:literal, $m14:literal, $m15:literal) => {
        concat!(
            g4_asm!(
                [0, 1, 2, 3],
                [4, 5, 6, 7],
                [8, 9, 10, 11],
                [12, 13, 14, 15],
                [$m0, $m2, $m4, $m6],
                [$m1, $m3, $m5, $m7]
            ),
            g4_asm!(
                [0, 1, 2, 3],
                [5, 6, 7, 4],
                [10, 11, 8, 9],
                [15, 12, 13, 14],
                [$m8, $m10, $m12, $m14],
                [$m9, $m11, $m13, $m15]
            ),
        )
    };
}

/// The seven rounds on 16 lanes, written out for the assembler: the 16
/// state rows in zmm0..zmm15, the 16 message rows in zmm16..zmm31, all 32
/// registers and nothing on the stack. BLAKE3's message permutation is
/// applied by naming the registers in each round's schedule order (each
/// row below is `MSG_SCHEDULE[r]` + 16), so no word moves between rounds.
/// LLVM, given the same rounds as intrinsics, spilled and
/// reloaded state rows and copied registers between the G functions
/// (54 moves per compression, docs/performance.md).
macro_rules! rounds16_asm {
    ($v:ident, $m:ident) => {
        // SAFETY: register-only arithmetic on the operands named below
        // (no memory, no stack, no flags read or written); the caller's function
        // enables AVX-512F, which every instruction here needs.
        unsafe {
            std::arch::asm!(
                round_asm!(16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31),
                round_asm!(18, 22, 19, 26, 23, 16, 20, 29, 17, 27, 28, 21, 25, 30, 31, 24),
                round_asm!(19, 20, 26, 28, 29, 18, 23, 30, 22, 21, 25, 16, 27, 31, 24, 17),
                round_asm!(26, 23, 28, 25, 30, 19, 29, 31, 20, 16, 27, 18, 21, 24, 17, 22),
                round_asm!(28, 29, 25, 27, 31, 26, 30, 24, 23, 18, 21, 19, 16, 17, 22, 20),
                round_asm!(25, 30, 27, 21, 24, 28, 31, 17, 29, 19, 16, 26, 18, 22, 20, 23),
                round_asm!(27, 31, 21, 16, 17, 25, 24, 22, 30, 26, 18, 28, 19, 20, 23, 29),
                inout("zmm0") $v[0],
                inout("zmm1") $v[1],
                inout("zmm2") $v[2],
                inout("zmm3") $v[3],
                inout("zmm4") $v[4],
                inout("zmm5") $v[5],
                inout("zmm6") $v[6],
                inout("zmm7") $v[7],
                inout("zmm8") $v[8],
                inout("zmm9") $v[9],
                inout("zmm10") $v[10],
                inout("zmm11") $v[11],
                inout("zmm12") $v[12],
                inout("zmm13") $v[13],
                inout("zmm14") $v[14],
                inout("zmm15") $v[15],
                in("zmm16") $m[0],
                in("zmm17") $m[1],
                in("zmm18") $m[2],
                in("zmm19") $m[3],
                in("zmm20") $m[4],
                in("zmm21") $m[5],
                in("zmm22") $m[6],
                in("zmm23") $m[7],
                in("zmm24") $m[8],
                in("zmm25") $m[9],
                in("zmm26") $m[10],
                in("zmm27") $m[11],
                in("zmm28") $m[12],
                in("zmm29") $m[13],
                in("zmm30") $m[14],
                in("zmm31") $m[15],
                options(pure, nomem, nostack, preserves_flags),
            )
        }
    };
}

/// Four G functions side by side on AVX2 registers named by number, as
/// text for `asm!`: the state words `a`, `b`, `c`, `d` of each G in
/// registers, its message words `x`, `y` read as memory operands from the
/// rows at `{m}`. AVX2 has no rotate: 16 and 8 are byte shuffles by the
/// masks at `{k}`; 12 and 7 are two shifts and an or through one temporary,
/// ymm8, whose row (a `c` of every step) is parked at `{t}` meanwhile, as
/// the blake3 crate's own AVX2 assembly does.
macro_rules! g4_avx2_asm {
    ([$($a:literal),*], [$($b:literal),*], [$($c:literal),*], [$($d:literal),*],
     [$($x:literal),*], [$($y:literal),*]) => {
        concat!(
            $("vpaddd ymm", $a, ", ymm", $a, ", ymmword ptr [{m} + ", $x, " * 32]\n",)*
            $("vpaddd ymm", $a, ", ymm", $a, ", ymm", $b, "\n",)*
            $("vpxor ymm", $d, ", ymm", $d, ", ymm", $a, "\n",)*
            $("vpshufb ymm", $d, ", ymm", $d, ", ymmword ptr [{k}]\n",)*
            $("vpaddd ymm", $c, ", ymm", $c, ", ymm", $d, "\n",)*
            $("vpxor ymm", $b, ", ymm", $b, ", ymm", $c, "\n",)*
            "vmovdqa ymmword ptr [{t}], ymm8\n",
            $("vpsrld ymm8, ymm", $b, ", 12\n",
              "vpslld ymm", $b, ", ymm", $b, ", 20\n",
              "vpor ymm", $b, ", ymm", $b, ", ymm8\n",)*
            "vmovdqa ymm8, ymmword ptr [{t}]\n",
            $("vpaddd ymm", $a, ", ymm", $a, ", ymmword ptr [{m} + ", $y, " * 32]\n",)*
            $("vpaddd ymm", $a, ", ymm", $a, ", ymm", $b, "\n",)*
            $("vpxor ymm", $d, ", ymm", $d, ", ymm", $a, "\n",)*
            $("vpshufb ymm", $d, ", ymm", $d, ", ymmword ptr [{k} + 32]\n",)*
            $("vpaddd ymm", $c, ", ymm", $c, ", ymm", $d, "\n",)*
            $("vpxor ymm", $b, ", ymm", $b, ", ymm", $c, "\n",)*
            "vmovdqa ymmword ptr [{t}], ymm8\n",
            $("vpsrld ymm8, ymm", $b, ", 7\n",
              "vpslld ymm", $b, ", ymm", $b, ", 25\n",
              "vpor ymm", $b, ", ymm", $b, ", ymm8\n",)*
            "vmovdqa ymm8, ymmword ptr [{t}]\n",
        )
    };
}

/// One AVX2 round as `asm!` text: the state in ymm0..ymm15, this round's
/// message rows (indices into `{m}`) in schedule order.
macro_rules! round_avx2_asm {
    ($m0:literal, $m1:literal, $m2:literal, $m3:literal, $m4:literal, $m5:literal,
     $m6:literal, $m7:literal, $m8:literal, $m9:literal, $m10:literal, $m11:literal,
     $m12:literal, $m13:literal, $m14:literal, $m15:literal) => {
        concat!(
            g4_avx2_asm!(
                [0, 1, 2, 3],
                [4, 5, 6, 7],
                [8, 9, 10, 11],
                [12, 13, 14, 15],
                [$m0, $m2, $m4, $m6],
                [$m1, $m3, $m5, $m7]
            ),
            g4_avx2_asm!(
                [0, 1, 2, 3],
                [5, 6, 7, 4],
                [10, 11, 8, 9],
                [15, 12, 13, 14],
                [$m8, $m10, $m12, $m14],
                [$m9, $m11, $m13, $m15]
            ),
        )
    };
}

/// The byte shuffles that rotate each 32-bit word right by 16 and by 8.
#[repr(C, align(32))]
struct RotMasks([u8; 64]);

static ROT_MASKS: RotMasks = RotMasks([
    2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14,
    15, 12, 13, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9,
    10, 11, 8, 13, 14, 15, 12,
]);

/// The seven rounds on 8 lanes for the assembler: the 16 state rows in
/// ymm0..ymm15, the 16 message rows `$m` in memory (each round names them
/// in `MSG_SCHEDULE` order, so no word moves between rounds). LLVM, given
/// the rounds as intrinsics, spilled state and message rows
/// around every G function and split each 16-bit rotate into two shuffles
/// (1.6 × the crate's AVX2 `hash_many` per block, docs/performance.md).
macro_rules! rounds8_asm {
    ($v:ident, $m:ident) => {
        let mut park = _mm256_setzero_si256();
        // SAFETY: arithmetic on the registers named below, loads from the
        // 16 rows of `$m` (offsets 0..512) and the 64 bytes of `ROT_MASKS`,
        // and a store and load of `park`, 32 bytes aligned as `vmovdqa`
        // needs (an `__m256i`); no stack, no flags. The caller's function
        // enables AVX2, which every instruction here needs.
        unsafe {
            std::arch::asm!(
                round_avx2_asm!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                round_avx2_asm!(2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8),
                round_avx2_asm!(3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1),
                round_avx2_asm!(10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6),
                round_avx2_asm!(12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4),
                round_avx2_asm!(9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7),
                round_avx2_asm!(11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13),
                m = in(reg) $m.as_ptr(),
                k = in(reg) ROT_MASKS.0.as_ptr(),
                t = in(reg) &mut park as *mut __m256i,
                inout("ymm0") $v[0],
                inout("ymm1") $v[1],
                inout("ymm2") $v[2],
                inout("ymm3") $v[3],
                inout("ymm4") $v[4],
                inout("ymm5") $v[5],
                inout("ymm6") $v[6],
                inout("ymm7") $v[7],
                inout("ymm8") $v[8],
                inout("ymm9") $v[9],
                inout("ymm10") $v[10],
                inout("ymm11") $v[11],
                inout("ymm12") $v[12],
                inout("ymm13") $v[13],
                inout("ymm14") $v[14],
                inout("ymm15") $v[15],
                options(nostack, preserves_flags),
            )
        }
    };
}

/// One BLAKE3 compression of 8 lanes in AVX2 registers, as `compress16!`
/// is for 16: the state from the CV rows `$cv`, the IV, the counter, block
/// length and flag rows, the seven rounds (`rounds8_asm!`) over the message
/// rows `$m`, and the new CV rows returned. With 16 registers the message
/// rows live on the stack and the rounds read them as memory operands.
macro_rules! compress8 {
    ($cv:expr, $m:expr, $counter_lo:expr, $counter_hi:expr, $block_len:expr, $flags:expr) => {{
        let cv: [__m256i; 8] = $cv;
        // By reference: the rounds read the rows from memory where they
        // are (a copy of the 512 bytes was a `memcpy` call per block).
        let m: &[__m256i; 16] = &$m;
        let mut v: [__m256i; 16] = [
            cv[0],
            cv[1],
            cv[2],
            cv[3],
            cv[4],
            cv[5],
            cv[6],
            cv[7],
            _mm256_set1_epi32(IV[0] as i32),
            _mm256_set1_epi32(IV[1] as i32),
            _mm256_set1_epi32(IV[2] as i32),
            _mm256_set1_epi32(IV[3] as i32),
            $counter_lo,
            $counter_hi,
            $block_len,
            $flags,
        ];
        rounds8_asm!(v, m);
        let mut out = [_mm256_setzero_si256(); 8];
        for w in 0..8 {
            out[w] = _mm256_xor_si256(v[w], v[w + 8]);
        }
        out
    }};
}

/// One BLAKE3 compression of 16 lanes in AVX-512 registers: the state from
/// the CV rows `$cv`, the IV, the counter, block length and flag rows, the
/// seven rounds over the message rows `$m`, and the new CV rows returned.
/// A macro, so each kernel keeps it inline: a function
/// would take its 24 vectors through memory wherever it was not inlined.
macro_rules! compress16 {
    ($cv:expr, $m:expr, $counter_lo:expr, $counter_hi:expr, $block_len:expr, $flags:expr) => {{
        let cv: [__m512i; 8] = $cv;
        let m: [__m512i; 16] = $m;
        let mut v: [__m512i; 16] = [
            cv[0],
            cv[1],
            cv[2],
            cv[3],
            cv[4],
            cv[5],
            cv[6],
            cv[7],
            _mm512_set1_epi32(IV[0] as i32),
            _mm512_set1_epi32(IV[1] as i32),
            _mm512_set1_epi32(IV[2] as i32),
            _mm512_set1_epi32(IV[3] as i32),
            $counter_lo,
            $counter_hi,
            $block_len,
            $flags,
        ];
        rounds16_asm!(v, m);
        let mut out = [_mm512_setzero_si512(); 8];
        for w in 0..8 {
            out[w] = _mm512_xor_si512(v[w], v[w + 8]);
        }
        out
    }};
}

pub fn compress16(s: &mut Step<16>) {
    // SAFETY: `hash_many` selects this backend only when the CPU reports AVX-512F.
    unsafe { compress16_avx512(s) }
}

pub fn compress8(s: &mut Step<8>) {
    // SAFETY: `hash_many` selects this backend only when the CPU reports AVX2.
    unsafe { compress8_avx2(s) }
}

/// Gather 16 lanes' blocks and compress them, the transposed message
/// words going straight from the transpose into the rounds.
pub fn compress16_rows(rows: &[&[u8; 64]; 16], s: &mut Step<16>) {
    // SAFETY: `hash_many` selects this backend only when the CPU reports AVX-512F.
    unsafe { compress16_rows_avx512(rows, s) }
}

#[target_feature(enable = "avx512f")]
unsafe fn compress16_rows_avx512(rows: &[&[u8; 64]; 16], s: &mut Step<16>) {
    // SAFETY: each row is 64 readable bytes; unaligned loads.
    let r: [__m512i; 16] =
        std::array::from_fn(|i| unsafe { _mm512_loadu_si512(rows[i].as_ptr() as *const _) });
    // SAFETY: same target feature as this function.
    unsafe { compress16_msg(transpose16(r), s) }
}

#[target_feature(enable = "avx512f")]
unsafe fn compress16_avx512(s: &mut Step<16>) {
    // SAFETY: `s.msg[w]` is 64 readable bytes; unaligned loads.
    let m: [__m512i; 16] =
        std::array::from_fn(|w| unsafe { _mm512_loadu_si512(s.msg[w].as_ptr() as *const _) });
    // SAFETY: same target feature as this function.
    unsafe { compress16_msg(m, s) }
}

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn compress16_msg(m: [__m512i; 16], s: &mut Step<16>) {
    #[inline(always)]
    fn ld(a: &[u32; 16]) -> __m512i {
        // SAFETY: `a` is 64 readable bytes; the load has no alignment requirement.
        unsafe { _mm512_loadu_si512(a.as_ptr() as *const _) }
    }
    let cv = [
        ld(&s.cv[0]),
        ld(&s.cv[1]),
        ld(&s.cv[2]),
        ld(&s.cv[3]),
        ld(&s.cv[4]),
        ld(&s.cv[5]),
        ld(&s.cv[6]),
        ld(&s.cv[7]),
    ];
    let out = compress16!(
        cv,
        m,
        ld(&s.counter_lo),
        ld(&s.counter_hi),
        ld(&s.block_len),
        ld(&s.flags)
    );
    for (w, o) in out.into_iter().enumerate() {
        // SAFETY: `s.cv[w]` is 64 writable bytes; unaligned store.
        unsafe { _mm512_storeu_si512(s.cv[w].as_mut_ptr() as *mut _, o) };
    }
}

#[target_feature(enable = "avx2")]
unsafe fn compress8_avx2(s: &mut Step<8>) {
    #[inline(always)]
    fn ld(a: &[u32; 8]) -> __m256i {
        // SAFETY: `a` is 32 readable bytes; the load has no alignment requirement.
        unsafe { _mm256_loadu_si256(a.as_ptr() as *const __m256i) }
    }
    let m: [__m256i; 16] = std::array::from_fn(|w| ld(&s.msg[w]));
    let cv: [__m256i; 8] = std::array::from_fn(|w| ld(&s.cv[w]));
    let (lo, hi, len, flags) = (
        ld(&s.counter_lo),
        ld(&s.counter_hi),
        ld(&s.block_len),
        ld(&s.flags),
    );
    let out = compress8!(cv, m, lo, hi, len, flags);
    for (w, o) in out.into_iter().enumerate() {
        // SAFETY: `s.cv[w]` is 32 writable bytes; unaligned store.
        unsafe { _mm256_storeu_si256(s.cv[w].as_mut_ptr() as *mut __m256i, o) };
    }
}

/// Bytes `start..start + 64` of `inp`, zero-padded past its end, into
/// `out`: at most two masked loads and one store, where the portable
/// `Input::block` makes two `memcpy` calls and a `memset` for every block
/// that straddles the pieces or ends short.
pub fn stage_block(inp: &Input, start: usize, out: &mut [u8; 64]) {
    // SAFETY: `Kernel` selects this only when the CPU reports AVX-512F and
    // AVX-512BW (`super::has_avx512bw`).
    unsafe { stage_block_avx512bw(inp, start, out) }
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn stage_block_avx512bw(inp: &Input, start: usize, out: &mut [u8; 64]) {
    // SAFETY: same target features as this function; `out` is 64 writable
    // bytes (unaligned store).
    unsafe { _mm512_storeu_si512(out.as_mut_ptr() as *mut _, row_at(inp, start)) }
}

/// `hash_blocks` on AVX2, up to 8 messages: each one block, already
/// zero-padded in `blocks`, all of length `len` under `key` in `mode`. The
/// key broadcast, each block's two half rows loaded in place and
/// transposed, one compression (chunk start, end, root), the CVs
/// transposed out into `outs`.
pub fn blocks8(key: &[u32; 8], mode: u32, len: usize, blocks: &[[u8; 64]], outs: &mut [[u8; 32]]) {
    // SAFETY: `hash_blocks` calls this only when the CPU reports AVX2.
    unsafe { blocks8_avx2(key, mode, len, blocks, outs) }
}

#[target_feature(enable = "avx2")]
unsafe fn blocks8_avx2(
    key: &[u32; 8],
    mode: u32,
    len: usize,
    blocks: &[[u8; 64]],
    outs: &mut [[u8; 32]],
) {
    let n = blocks.len().min(8).min(outs.len());
    let cv = broadcast_key8(key);
    let mut rows = [[_mm256_setzero_si256(); 8]; 2];
    for (l, blk) in blocks[..n].iter().enumerate() {
        // SAFETY: each block is 64 readable bytes; unaligned loads.
        unsafe {
            rows[0][l] = _mm256_loadu_si256(blk.as_ptr() as *const __m256i);
            rows[1][l] = _mm256_loadu_si256(blk.as_ptr().add(32) as *const __m256i);
        }
    }
    let mut m = [_mm256_setzero_si256(); 16];
    m[..8].copy_from_slice(&transpose8(rows[0]));
    m[8..].copy_from_slice(&transpose8(rows[1]));
    let node = Node::Root;
    let flags = mode | node.start_flag() | node.end_flags();
    let cv = compress8!(
        cv,
        m,
        _mm256_set1_epi32(node.counter() as i32),
        _mm256_setzero_si256(),
        _mm256_set1_epi32(len as i32),
        _mm256_set1_epi32(flags as i32)
    );
    store_cvs8(cv, &mut outs[..n]);
}

/// `hash_blocks` on AVX-512, up to 16 messages, as [`blocks8`] on AVX2:
/// the key broadcast, each block loaded whole in place and the 16 rows
/// transposed, one compression, the CVs transposed out into `outs`. A
/// burst's lineage folds took `chunk16` before, through an `Input` per
/// fold and the kernel's per-lane shape and placement passes, none of
/// which a batch of padded blocks under one key needs.
pub fn blocks16(key: &[u32; 8], mode: u32, len: usize, blocks: &[[u8; 64]], outs: &mut [[u8; 32]]) {
    // SAFETY: `hash_blocks` calls this only when the CPU reports AVX-512F.
    unsafe { blocks16_avx512(key, mode, len, blocks, outs) }
}

#[target_feature(enable = "avx512f")]
unsafe fn blocks16_avx512(
    key: &[u32; 8],
    mode: u32,
    len: usize,
    blocks: &[[u8; 64]],
    outs: &mut [[u8; 32]],
) {
    let n = blocks.len().min(16).min(outs.len());
    let cv = broadcast_key16(key);
    let mut rows = [_mm512_setzero_si512(); 16];
    for (row, blk) in rows.iter_mut().zip(&blocks[..n]) {
        // SAFETY: each block is 64 readable bytes; unaligned load.
        *row = unsafe { _mm512_loadu_si512(blk.as_ptr() as *const _) };
    }
    let node = Node::Root;
    let flags = mode | node.start_flag() | node.end_flags();
    let cv = compress16!(
        cv,
        transpose16(rows),
        _mm512_set1_epi32(node.counter() as i32),
        _mm512_setzero_si512(),
        _mm512_set1_epi32(len as i32),
        _mm512_set1_epi32(flags as i32)
    );
    store_cvs16(cv, &mut outs[..n]);
}

/// One key's words, each broadcast to the 16 lanes.
#[target_feature(enable = "avx512f")]
#[inline]
fn broadcast_key16(key: &[u32; 8]) -> [__m512i; 8] {
    let mut cv = [_mm512_setzero_si512(); 8];
    for (c, &k) in cv.iter_mut().zip(key) {
        *c = _mm512_set1_epi32(k as i32);
    }
    cv
}

/// Up to 16 lanes' CV rows transposed out, lane `l`'s 32 bytes into
/// `outs[l]` (lanes past `outs` are not stored).
#[target_feature(enable = "avx512f")]
#[inline]
fn store_cvs16(cv: [__m512i; 8], outs: &mut [[u8; 32]]) {
    // out[j]: lane j's CV in the low half, lane j + 8's in the high.
    for (j, o) in transpose8x2(cv).into_iter().enumerate() {
        if let Some(dst) = outs.get_mut(j) {
            // SAFETY: `dst` is 32 writable bytes; unaligned store.
            unsafe {
                _mm256_storeu_si256(dst.as_mut_ptr() as *mut __m256i, _mm512_castsi512_si256(o))
            };
        }
        if let Some(dst) = outs.get_mut(j + 8) {
            // SAFETY: as above.
            unsafe {
                _mm256_storeu_si256(
                    dst.as_mut_ptr() as *mut __m256i,
                    _mm512_extracti64x4_epi64::<1>(o),
                )
            };
        }
    }
}

/// One key's words, each broadcast to the 8 lanes: the CV rows of lanes
/// that share it.
#[target_feature(enable = "avx2")]
#[inline]
fn broadcast_key8(key: &[u32; 8]) -> [__m256i; 8] {
    let mut cv = [_mm256_setzero_si256(); 8];
    for (c, &k) in cv.iter_mut().zip(key) {
        *c = _mm256_set1_epi32(k as i32);
    }
    cv
}

/// The starting CV rows of `batch`'s lanes (at least one input): the first
/// key broadcast where every lane shares it, else the lanes' keys (IV past
/// `batch`) loaded and transposed.
#[target_feature(enable = "avx2")]
#[inline]
fn key_cvs8(batch: &[Input]) -> [__m256i; 8] {
    let first = batch.first().map_or(&IV, |f| f.key);
    if batch.iter().all(|inp| std::ptr::eq(inp.key, first)) {
        return broadcast_key8(first);
    }
    // Each address taken from the input as its row is loaded (IV past
    // `batch`), as in `chunk16`: not staged in an array first.
    let mut rows = [_mm256_setzero_si256(); 8];
    for (l, row) in rows.iter_mut().enumerate() {
        let k = batch.get(l).map_or(IV.as_ptr(), |inp| inp.key.as_ptr());
        // SAFETY: `k` points at 8 readable words (a lane's key, or IV);
        // unaligned load.
        *row = unsafe { _mm256_loadu_si256(k as *const __m256i) };
    }
    transpose8(rows)
}

/// Up to 8 lanes' CV rows transposed out, lane `l`'s 32 bytes into
/// `outs[l]` (lanes past `outs` are not stored).
#[target_feature(enable = "avx2")]
#[inline]
fn store_cvs8(cv: [__m256i; 8], outs: &mut [[u8; 32]]) {
    for (dst, o) in outs.iter_mut().zip(transpose8(cv)) {
        // SAFETY: `dst` is 32 writable bytes; unaligned store.
        unsafe { _mm256_storeu_si256(dst.as_mut_ptr() as *mut __m256i, o) };
    }
}

/// Whether every input of `batch` has the first's length and mode: then a
/// chunk kernel's lengths and flags are one broadcast value per block, and
/// every lane ends with the last block. An early-exit test, so the compiler
/// does not turn it into gathers over the inputs.
#[inline(always)]
fn one_shape(batch: &[Input]) -> bool {
    let Some(first) = batch.first() else {
        return true;
    };
    let first_len = first.len();
    batch
        .iter()
        .all(|inp| inp.len() == first_len && inp.mode == first.mode)
}

/// Pass `pass` of a chunk kernel's block loop: the chunk it hashes, as
/// bytes `base..` of each message, at most `cap`, and as a node. One pass
/// over a one-chunk message (`node` as the caller asked); if `two`, chunk
/// 0 (the first CHUNK_LEN bytes), then chunk 1 (the rest).
#[inline(always)]
fn pass_chunk(two: bool, pass: usize, node: Node) -> (usize, usize, Node) {
    match (two, pass) {
        (false, _) => (0, usize::MAX, node),
        (true, 0) => (0, CHUNK_LEN, node),
        (true, _) => (CHUNK_LEN, usize::MAX, Node::Chunk(1)),
    }
}

/// The bytes of `inp` that a pass over its chunk at `base` hashes: those
/// from `base` on, at most `cap` (a two-chunk message's chunk 0 is its
/// first `CHUNK_LEN`; a one-chunk message is `base` 0, `cap` unbounded).
#[inline(always)]
fn chunk_len(inp: &Input, base: usize, cap: usize) -> usize {
    inp.len().saturating_sub(base).min(cap)
}

/// Each lane's length (of its chunk at `base`, at most `cap` bytes,
/// `chunk_len`) and mode for a batch of mixed shapes (zeros where
/// `uniform`, which needs neither), and the blocks of its longest chunk
/// (an empty one is one block). `batch` has at least one input.
#[inline(always)]
fn lane_shapes<const L: usize>(
    batch: &[Input],
    uniform: bool,
    base: usize,
    cap: usize,
) -> ([u32; L], [u32; L], usize) {
    let (mut lens, mut modes) = ([0u32; L], [0u32; L]);
    let mut most = batch
        .first()
        .map_or(0, |f| chunk_len(f, base, cap).div_ceil(BLOCK_LEN))
        .max(1);
    if !uniform {
        for (l, inp) in batch.iter().enumerate().take(L) {
            let len = chunk_len(inp, base, cap);
            lens[l] = len as u32;
            modes[l] = inp.mode;
            most = most.max(len.div_ceil(BLOCK_LEN));
        }
    }
    (lens, modes, most)
}

/// Block `b` of `most`'s length and flags in a batch of one shape: every
/// lane's chunk `len` bytes in `mode`, for a kernel computing `node`.
#[inline(always)]
fn uniform_block(len: usize, mode: u32, b: usize, most: usize, node: Node) -> (u32, u32) {
    let len = len.saturating_sub(b * BLOCK_LEN).min(BLOCK_LEN) as u32;
    let mut f = mode;
    if b == 0 {
        f |= node.start_flag();
    }
    if b + 1 == most {
        f |= node.end_flags();
    }
    (len, f)
}

/// Each lane's block at `start` where every lane's head holds it whole,
/// into `src` (lanes past `batch` keep what `src` held: the zero block).
/// A scalar pass that stops at the first lane whose head does not (a MAC's
/// block that straddles the header and the payload), returning false.
#[inline(always)]
fn head_blocks<const L: usize>(batch: &[Input], start: usize, src: &mut [*const u8; L]) -> bool {
    batch.iter().zip(src.iter_mut()).all(|(inp, s)| {
        let block = inp.head.get(start..start + BLOCK_LEN);
        if let Some(b) = block {
            *s = b.as_ptr();
        }
        block.is_some()
    })
}

/// Each lane's block at `start` where every lane has it whole in one of
/// its pieces (`Input::direct`), into `src`; false at the first lane that
/// does not (its block straddles the pieces or runs past the message).
#[inline(always)]
fn piece_blocks<const L: usize>(batch: &[Input], start: usize, src: &mut [*const u8; L]) -> bool {
    batch.iter().zip(src.iter_mut()).all(|(inp, s)| {
        let block = inp.direct(start);
        if let Some(b) = block {
            *s = b.as_ptr();
        }
        block.is_some()
    })
}

/// Hash up to 16 one-chunk messages (each at most 1024 bytes) start to end
/// in registers: keys transposed in (or broadcast when the lanes share one),
/// each block loaded straight from the messages (as paired half rows where
/// every lane's first piece holds it, else whole rows from `row_at`) and
/// transposed, the rounds, the CVs transposed out and stored into `outs`.
/// Nothing is staged in memory between blocks, so no load waits on a
/// narrower store of the step before (a CV stored as two 256-bit halves and
/// read back whole stalls on store forwarding).
///
/// Lanes past `batch` hash zero rows and are not stored. Lanes shorter than
/// the longest go on hashing zero rows once their message ended; their CV is
/// taken at their own last block.
pub fn chunk16(batch: &[Input], outs: &mut [[u8; 32]], node: Node) {
    // SAFETY: `hash_many` selects this only when the CPU reports AVX-512F
    // and AVX-512BW (`super::has_avx512bw`).
    unsafe { chunk16_avx512bw::<false>(batch, outs, node) }
}

/// `chunk16` (one-chunk messages), or `two_chunks16` if `TWO` (`node` then
/// `Chunk(0)`): the batch cut to `outs` and at most 16, then the body
/// compiled for its shape.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn chunk16_avx512bw<const TWO: bool>(batch: &[Input], outs: &mut [[u8; 32]], node: Node) {
    let n = batch.len().min(16).min(outs.len());
    if n == 0 {
        return;
    }
    let batch = &batch[..n];
    // Batches of one shape (`one_shape`) and mixed ones are compiled
    // apart: in one body the mixed case's per-lane lengths, flags and kept
    // CVs stayed live around the rounds, which use all 32 registers, and
    // were spilled and reloaded for every batch (64 B: 13.4 → 11.9 ns a
    // message, docs/performance.md).
    // SAFETY: same target features as this function.
    unsafe {
        if one_shape(batch) {
            chunk16_shaped::<true, TWO>(batch, outs, node)
        } else {
            chunk16_shaped::<false, TWO>(batch, outs, node)
        }
    }
}

/// Hash up to 16 messages of two chunks (each more than 1024 bytes, at
/// most 2048), given whole, into `outs`: both chunks as `chunk16` hashes a
/// batch, each block read at its place in the message, then the root
/// parents straight from the two chunks' CV rows, which are already the
/// parent block's message rows (words 0..8 the left CV, 8..16 the right),
/// under the key rows both chunks started from. Run as two `chunk16`
/// batches and a batch of parents, each chunk's CVs were transposed out,
/// copied into blocks and transposed back in, and the parents took a
/// kernel call and its per-lane passes of their own; given as inputs of
/// their own, the chunks cost each batch 32 inputs built and copied first.
///
/// Every message is longer than one chunk (1024 bytes) and at most two,
/// as `super::two_chunks` sends them: a shorter one would hash wrong
/// (its chunk 1 empty), though every load stays inside its pieces.
pub fn two_chunks16(batch: &[Input], outs: &mut [[u8; 32]]) {
    // SAFETY: `hash_many` selects this only when the CPU reports AVX-512F
    // and AVX-512BW (`super::has_avx512bw`), as for `chunk16`.
    unsafe { chunk16_avx512bw::<true>(batch, outs, Node::Chunk(0)) }
}

/// `chunk16` for a batch of `n` ≥ 1 inputs (`batch` already cut to
/// `outs`), all of one length and mode if `UNIFORM`. If `TWO`, `batch` is
/// messages of more than one chunk and at most two (`node` is `Chunk(0)`):
/// their chunk 0 (bytes 0..CHUNK_LEN), then their chunk 1 (the rest) go
/// through the one block loop below, from the same key rows, each block
/// loaded from its place in the message, and the root parents follow
/// (`two_chunks16`).
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn chunk16_shaped<const UNIFORM: bool, const TWO: bool>(
    batch: &[Input],
    outs: &mut [[u8; 32]],
    node: Node,
) {
    use super::{PARENT, ROOT, ZERO_BLOCK};
    let n = batch.len();
    let Some(first) = batch.first() else {
        return;
    };
    let uniform = UNIFORM;
    // Whether the lanes share the first's key (an early-exit test, as above).
    let same_key = batch.iter().all(|inp| std::ptr::eq(inp.key, first.key));
    let key = if same_key {
        broadcast_key16(first.key)
    } else {
        // Row i: lane i's key in the low half, lane i + 8's in the high,
        // loaded straight into registers from each lane's key address (IV
        // for lanes past `batch`), as the blocks are below. Each address
        // is taken from the input as its row is loaded: staged first in a
        // 16-entry array, they went through the stack (64 B lanes
        // 1.26–1.29 → 1.21–1.23 × the crate without it,
        // docs/performance.md, fifteenth round).
        let kp = |l: usize| batch.get(l).map_or(IV.as_ptr(), |inp| inp.key.as_ptr());
        let mut rows = [_mm512_setzero_si512(); 8];
        for (i, row) in rows.iter_mut().enumerate() {
            // SAFETY: `kp(i)` and `kp(i + 8)` each point at 8 readable
            // words (a lane's key, or IV); unaligned loads.
            *row = unsafe {
                _mm512_inserti64x4::<1>(
                    _mm512_castsi256_si512(_mm256_loadu_si256(kp(i) as *const __m256i)),
                    _mm256_loadu_si256(kp(i + 8) as *const __m256i),
                )
            };
        }
        transpose8x2(rows)
    };
    // Two-chunk messages of one shape in two pieces (a burst's MACs of one
    // frame size past 1 KiB): every lane's pieces, found once a batch, so
    // that a block wholly in one piece is read at that piece's base plus
    // one offset for all lanes, with no per-lane pass a block (lanes past
    // `batch` read the first lane's, never stored). Only here: for
    // one-chunk messages the arrays cost more than the passes save
    // (docs/performance.md, nineteenth and twentieth rounds).
    let pieces = if UNIFORM
        && TWO
        && batch
            .iter()
            .all(|inp| inp.whole.is_none() && inp.head.len() == first.head.len())
    {
        let (mut heads, mut tails) = ([first.head.as_ptr(); 16], [first.tail.as_ptr(); 16]);
        for (l, inp) in batch.iter().enumerate() {
            (heads[l], tails[l]) = (inp.head.as_ptr(), inp.tail.as_ptr());
        }
        Some((heads, tails, first.head.len(), first.tail.len()))
    } else {
        None
    };
    // Whether the masked path may find its masks once for all lanes (see
    // there): asked at most once a batch, on the first masked block (the
    // 128 B MAC has two), and known already for two-chunk batches of one
    // shape, which `pieces` asked.
    let mut one_split = (UNIFORM && TWO).then_some(pieces.is_some());
    let (mut cv, mut left) = (key, key);
    // One pass, or two (chunk 0, then chunk 1): a loop, so the block loop
    // is compiled once in each kernel, not once for each chunk.
    for pass in 0..1 + TWO as usize {
        let (base, cap, node) = pass_chunk(TWO, pass, node);
        let first_len = chunk_len(first, base, cap);
        let (start_flag, end_flags) = (node.start_flag(), node.end_flags());
        let (lens, modes, most) = lane_shapes::<16>(batch, uniform, base, cap);
        // SAFETY: 64 readable bytes each; unaligned loads.
        let (lens_v, modes_v) = unsafe {
            (
                _mm512_loadu_si512(lens.as_ptr() as *const _),
                _mm512_loadu_si512(modes.as_ptr() as *const _),
            )
        };
        // Each lane's blocks (an empty message is one block).
        let blocks_v = _mm512_max_epu32(
            _mm512_srli_epi32::<6>(_mm512_add_epi32(lens_v, _mm512_set1_epi32(63))),
            _mm512_set1_epi32(1),
        );
        let ends_together =
            uniform || _mm512_cmpeq_epi32_mask(blocks_v, _mm512_set1_epi32(most as i32)) == !0;
        let mut done = cv;
        let zero_block: &'static [u8; BLOCK_LEN] = &ZERO_BLOCK;
        for b in 0..most {
            // The block's offset in its chunk, and in the message.
            let start = b * BLOCK_LEN;
            let at = base + start;
            let (block_len, flags) = if uniform {
                let (len, f) = uniform_block(first_len, first.mode, b, most, node);
                (_mm512_set1_epi32(len as i32), _mm512_set1_epi32(f as i32))
            } else {
                let rest = _mm512_max_epi32(
                    _mm512_sub_epi32(lens_v, _mm512_set1_epi32(start as i32)),
                    _mm512_setzero_si512(),
                );
                let len = _mm512_min_epu32(rest, _mm512_set1_epi32(BLOCK_LEN as i32));
                let last = _mm512_cmpeq_epi32_mask(blocks_v, _mm512_set1_epi32(b as i32 + 1));
                let mut f = modes_v;
                if b == 0 {
                    f = _mm512_or_si512(f, _mm512_set1_epi32(start_flag as i32));
                }
                f = _mm512_mask_or_epi32(f, last, f, _mm512_set1_epi32(end_flags as i32));
                (len, f)
            };
            // Where every lane's head holds this whole block (key derivations,
            // the lanes benchmark), each half block (words 0..8, then 8..16) is
            // loaded as 32-byte rows, lane l and lane l + 8 paired in one
            // register by the loads, then two 8×8 transposes at once: fewer
            // shuffles, on the path into the rounds, than the 16×16 transpose of
            // whole rows below. Whether it does is found first, in a scalar pass
            // that also takes each lane's block address (the zero block for
            // lanes past `batch`); the loads then go straight into registers,
            // unrolled, with no branch per lane and no row staged on the stack
            // (a 64-byte load of two 32-byte stores stalls on store forwarding).
            // Where the first lane's head is already too short (a MAC's block
            // that straddles the header and the payload), the pass stops at once.
            // Where not, every lane's block may still lie whole in one of its
            // two pieces (a MAC's blocks past the first lie in the payload): a
            // second such pass, for the same loads. Only blocks that straddle
            // the pieces or end a message take `row_at`'s masked loads, whose
            // per-lane lengths and masks cost about as much as the rounds.
            let mut src = [zero_block.as_ptr(); 16];
            // The block's lanes as bases and an offset: a piece's, where
            // `pieces` has it whole in one; else each lane's address.
            let whole_in = pieces.and_then(|(heads, tails, h, t)| {
                if at + BLOCK_LEN <= h {
                    Some((heads, at))
                } else if at >= h && at - h + BLOCK_LEN <= t {
                    Some((tails, at - h))
                } else {
                    None
                }
            });
            let (bases, off, in_place) = match whole_in {
                Some((bases, off)) => (bases, off, true),
                None => {
                    let found =
                        head_blocks(batch, at, &mut src) || piece_blocks(batch, at, &mut src);
                    (src, 0, found)
                }
            };
            let m = if in_place {
                let mut words = [_mm512_setzero_si512(); 16];
                for h in 0..2 {
                    let mut r = [_mm512_setzero_si512(); 8];
                    for (l, r) in r.iter_mut().enumerate() {
                        // SAFETY: `bases[l] + off` and `bases[l + 8] + off`
                        // have 64 readable bytes each (a block whole in a
                        // piece, or the zero block at offset 0); unaligned
                        // loads of half `h`.
                        *r = unsafe {
                            _mm512_inserti64x4::<1>(
                                _mm512_castsi256_si512(_mm256_loadu_si256(
                                    bases[l].add(off + 32 * h) as *const __m256i,
                                )),
                                _mm256_loadu_si256(bases[l + 8].add(off + 32 * h) as *const __m256i),
                            )
                        };
                    }
                    words[8 * h..8 * h + 8].copy_from_slice(&transpose8x2(r));
                }
                words
            } else {
                // A plain loop, not `array::from_fn`: its closure would not
                // inherit this function's target features, so `row_at` would be
                // called out of line for every lane, returning each row through
                // memory.
                let mut rows = [_mm512_setzero_si512(); 16];
                let h = first.head.len();
                // A batch of one shape whose heads are all one length (a burst's
                // MACs of one frame size): every lane's pieces of this block
                // have the same lengths, so the masks are found once, and each
                // lane is two masked loads.
                let one_split = *one_split.get_or_insert_with(|| {
                    uniform
                        && batch
                            .iter()
                            .all(|inp| inp.whole.is_none() && inp.head.len() == h)
                });
                if one_split {
                    let split = Split::at(h, first.tail.len(), at);
                    for (row, inp) in rows.iter_mut().zip(batch) {
                        // SAFETY: same target features as this function; every
                        // lane's head is `h` bytes and its tail the first's length.
                        *row = unsafe { split.row(inp) };
                    }
                } else {
                    for (row, inp) in rows.iter_mut().zip(batch) {
                        // SAFETY: same target features as this function.
                        *row = unsafe { row_at(inp, at) };
                    }
                }
                transpose16(rows)
            };
            // A one-chunk message is chunk 0: both counter words are 0.
            // The chunk's index is the counter (a parent's is 0); below 2^32.
            let (counter_lo, counter_hi) = (
                _mm512_set1_epi32(node.counter() as i32),
                _mm512_setzero_si512(),
            );
            cv = compress16!(cv, m, counter_lo, counter_hi, block_len, flags);
            if !ends_together {
                // Keep the CV of each lane whose message ended with this block.
                let last = _mm512_cmpeq_epi32_mask(blocks_v, _mm512_set1_epi32(b as i32 + 1));
                for w in 0..8 {
                    done[w] = _mm512_mask_mov_epi32(done[w], last, cv[w]);
                }
            }
        }
        if !ends_together {
            cv = done;
        }
        if TWO && pass == 0 {
            (left, cv) = (cv, key);
        }
    }
    if TWO {
        // The root parents: each lane's mode with PARENT and ROOT (the
        // message's, which both its chunks carry), one block of 64 bytes,
        // counter 0.
        let modes = if uniform {
            _mm512_set1_epi32(first.mode as i32)
        } else {
            let mut modes = [0u32; 16];
            for (m, inp) in modes.iter_mut().zip(batch) {
                *m = inp.mode;
            }
            // SAFETY: 64 readable bytes; unaligned load.
            unsafe { _mm512_loadu_si512(modes.as_ptr() as *const _) }
        };
        let flags = _mm512_or_si512(modes, _mm512_set1_epi32((PARENT | ROOT) as i32));
        let m = [
            left[0], left[1], left[2], left[3], left[4], left[5], left[6], left[7], cv[0], cv[1],
            cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
        ];
        let zero = _mm512_setzero_si512();
        let len = _mm512_set1_epi32(BLOCK_LEN as i32);
        cv = compress16!(key, m, zero, zero, len, flags);
    }
    let stored = n.min(outs.len());
    store_cvs16(cv, &mut outs[..stored]);
}

/// Two 8×8 transposes of 32-bit words at once, one in each 256-bit half of
/// 8 AVX-512 registers (as `transpose8` does in AVX2 registers): row `i`'s
/// low half holds row `i` of the first matrix, its high half row `i` of the
/// second; so does the result's.
#[target_feature(enable = "avx512f")]
fn transpose8x2(r: [__m512i; 8]) -> [__m512i; 8] {
    let t = [
        _mm512_unpacklo_epi32(r[0], r[1]),
        _mm512_unpackhi_epi32(r[0], r[1]),
        _mm512_unpacklo_epi32(r[2], r[3]),
        _mm512_unpackhi_epi32(r[2], r[3]),
        _mm512_unpacklo_epi32(r[4], r[5]),
        _mm512_unpackhi_epi32(r[4], r[5]),
        _mm512_unpacklo_epi32(r[6], r[7]),
        _mm512_unpackhi_epi32(r[6], r[7]),
    ];
    let u = [
        _mm512_unpacklo_epi64(t[0], t[2]),
        _mm512_unpackhi_epi64(t[0], t[2]),
        _mm512_unpacklo_epi64(t[1], t[3]),
        _mm512_unpackhi_epi64(t[1], t[3]),
        _mm512_unpacklo_epi64(t[4], t[6]),
        _mm512_unpackhi_epi64(t[4], t[6]),
        _mm512_unpacklo_epi64(t[5], t[7]),
        _mm512_unpackhi_epi64(t[5], t[7]),
    ];
    // In each 256-bit half: the low 128 bits of u[j] and u[4 + j], then
    // their high 128 bits (AVX2's `permute2x128` 0x20 and 0x31).
    let lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    let hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    let mut out = [_mm512_setzero_si512(); 8];
    for j in 0..4 {
        out[j] = _mm512_permutex2var_epi64(u[j], lo, u[4 + j]);
        out[4 + j] = _mm512_permutex2var_epi64(u[j], hi, u[4 + j]);
    }
    out
}

/// `row_at`'s loads for a block at `start` of inputs whose heads are all
/// `h` bytes and tails all `t`: the pieces' lengths and masks, found once.
struct Split {
    /// Where the block's head bytes start (`start`, at most `h`).
    head_at: usize,
    /// Where the tail's load is based: its first byte in the block, moved
    /// back by the head bytes before it (wrapping, never read there).
    tail_at: usize,
    tail_back: usize,
    head_mask: u64,
    tail_mask: u64,
}

impl Split {
    #[inline(always)]
    fn at(h: usize, t: usize, start: usize) -> Self {
        let ones = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        let nh = h.saturating_sub(start).min(64);
        let ts = start.saturating_sub(h);
        let nt = t.saturating_sub(ts).min(64 - nh);
        Self {
            head_at: start.min(h),
            tail_at: ts.min(t),
            tail_back: nh,
            head_mask: ones(nh),
            tail_mask: ones(nh + nt) & !ones(nh),
        }
    }

    /// `row_at(inp, start)` for an input of this split's lengths.
    ///
    /// # Safety
    /// `inp.head` has the `h` bytes and `inp.tail` the `t` of [`Split::at`],
    /// and `inp.whole` is `None`; AVX-512BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    unsafe fn row(&self, inp: &Input) -> __m512i {
        // SAFETY: as in `row_at`: each masked load reads only the bytes its
        // mask selects, inside `head[head_at..]` and `tail[tail_at..]` by
        // the lengths `Split::at` took from this input's own; an empty mask
        // issues no load (its base may be an empty slice's dangling pointer).
        unsafe {
            let mut v = _mm512_setzero_si512();
            if self.head_mask != 0 {
                v = _mm512_maskz_loadu_epi8(
                    self.head_mask,
                    inp.head.as_ptr().add(self.head_at) as *const i8,
                );
            }
            if self.tail_mask != 0 {
                let base = inp
                    .tail
                    .as_ptr()
                    .wrapping_add(self.tail_at)
                    .wrapping_sub(self.tail_back);
                v = _mm512_mask_loadu_epi8(v, self.tail_mask, base as *const i8);
            }
            v
        }
    }
}

/// Bytes `start..start + 64` of `inp`, zero-padded past its end.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn row_at(inp: &Input, start: usize) -> __m512i {
    if let Some(w) = inp.whole {
        // The caller's padded block: whole 64 bytes (its bytes were just
        // written, and a masked load would wait for those stores).
        return match start {
            // SAFETY: `w` is 64 readable bytes; unaligned load.
            0 => unsafe { _mm512_loadu_si512(w.as_ptr() as *const _) },
            _ => _mm512_setzero_si512(),
        };
    }
    let ones = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    let (head, tail) = (inp.head, inp.tail);
    let h = head.len();
    let nh = h.saturating_sub(start).min(64);
    if nh == 64 {
        // SAFETY: `head[start..start + 64]` is in bounds (nh == 64).
        return unsafe { _mm512_loadu_si512(head.as_ptr().add(start) as *const _) };
    }
    let ts = start.saturating_sub(h);
    let nt = tail.len().saturating_sub(ts).min(64 - nh);
    // SAFETY: as in `stage_block_avx512bw`: each masked load reads only the
    // bytes its mask selects, all inside `head[start.min(h)..]` and
    // `tail[ts..]` by the lengths above; the tail's base is moved back by
    // `nh` (wrapping, never dereferenced there).
    //
    // A load whose mask is empty is skipped, not issued: its address may be
    // an empty slice's dangling pointer, and a masked load there costs a
    // microcode assist on some CPUs even though it reads nothing.
    unsafe {
        let mut v = _mm512_setzero_si512();
        if nh > 0 {
            v = _mm512_maskz_loadu_epi8(ones(nh), head.as_ptr().add(start.min(h)) as *const i8);
        }
        if nt > 0 {
            let base = tail
                .as_ptr()
                .wrapping_add(ts.min(tail.len()))
                .wrapping_sub(nh);
            v = _mm512_mask_loadu_epi8(v, ones(nh + nt) & !ones(nh), base as *const i8);
        }
        v
    }
}

/// Gather 16 lanes' blocks into word-major order: a 16×16 transpose of
/// 32-bit words in AVX-512 registers (interleave 32-bit, then 64-bit words
/// within 128-bit lanes, then move 128-bit lanes across registers).
pub fn gather16(rows: &[&[u8; 64]; 16], msg: &mut [[u32; 16]; 16]) {
    // SAFETY: `hash_many` selects this backend only when the CPU reports AVX-512F.
    unsafe { gather16_avx512(rows, msg) }
}

#[target_feature(enable = "avx512f")]
unsafe fn gather16_avx512(rows: &[&[u8; 64]; 16], msg: &mut [[u32; 16]; 16]) {
    // SAFETY: each row is 64 readable bytes; unaligned loads.
    let r: [__m512i; 16] =
        std::array::from_fn(|i| unsafe { _mm512_loadu_si512(rows[i].as_ptr() as *const _) });
    let t = transpose16(r);
    for (w, v) in t.into_iter().enumerate() {
        // SAFETY: `msg[w]` is 64 writable bytes; unaligned store.
        unsafe { _mm512_storeu_si512(msg[w].as_mut_ptr() as *mut _, v) };
    }
}

/// 16 lanes' keys into the word-major CV: an 8×8 transpose in AVX2
/// registers for each 8 lanes (a key is 8 words, so a 16×16 transpose
/// would move half zeros).
pub fn keys16(keys: &[&[u32; 8]; 16], cv: &mut [[u32; 16]; 8]) {
    // SAFETY: `hash_many` selects this backend only when the CPU reports
    // AVX-512F, which implies AVX2.
    unsafe { keys16_avx2(keys, cv) }
}

#[target_feature(enable = "avx2")]
unsafe fn keys16_avx2(keys: &[&[u32; 8]; 16], cv: &mut [[u32; 16]; 8]) {
    for half in 0..2 {
        // SAFETY: each key is 32 readable bytes; unaligned loads.
        let r: [__m256i; 8] = std::array::from_fn(|i| unsafe {
            _mm256_loadu_si256(keys[8 * half + i].as_ptr() as *const __m256i)
        });
        for (w, v) in transpose8(r).into_iter().enumerate() {
            // SAFETY: `cv[w]` is 64 writable bytes; this half's 32 start 8 words in.
            unsafe { _mm256_storeu_si256(cv[w].as_mut_ptr().add(8 * half) as *mut __m256i, v) };
        }
    }
}

/// The CVs of up to 16 lanes (word-major) into `out[l]` as bytes (a CV's
/// little-endian words are its bytes): each 8-lane half transposed in AVX2
/// registers and stored whole. `out` may be shorter than 16.
pub fn scatter16(cv: &[[u32; 16]; 8], out: &mut [[u8; 32]]) {
    // SAFETY: `hash_many` selects this backend only when the CPU reports
    // AVX-512F, which implies AVX2.
    unsafe { scatter16_avx2(cv, out) }
}

#[target_feature(enable = "avx2")]
unsafe fn scatter16_avx2(cv: &[[u32; 16]; 8], out: &mut [[u8; 32]]) {
    for half in 0..2 {
        // SAFETY: `cv[w]` is 64 readable bytes; this half's 32 start at 8 words in.
        let r: [__m256i; 8] = std::array::from_fn(|w| unsafe {
            _mm256_loadu_si256(cv[w].as_ptr().add(8 * half) as *const __m256i)
        });
        for (o, v) in out.iter_mut().skip(8 * half).zip(transpose8(r)) {
            // SAFETY: `o` is 32 writable bytes; unaligned store.
            unsafe { _mm256_storeu_si256(o.as_mut_ptr() as *mut __m256i, v) };
        }
    }
}

/// Transpose a 16×16 matrix of 32-bit words held in 16 registers:
/// interleave 32-bit then 64-bit words within 128-bit lanes, then move
/// 128-bit lanes across registers.
#[target_feature(enable = "avx512f")]
fn transpose16(r: [__m512i; 16]) -> [__m512i; 16] {
    let mut t = [_mm512_setzero_si512(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // u[4g + j], 128-bit lane k: rows 4g..4g+4 of word 4k + j.
    let mut u = [_mm512_setzero_si512(); 16];
    for g in 0..4 {
        let b = 4 * g;
        u[b] = _mm512_unpacklo_epi64(t[b], t[b + 2]);
        u[b + 1] = _mm512_unpackhi_epi64(t[b], t[b + 2]);
        u[b + 2] = _mm512_unpacklo_epi64(t[b + 1], t[b + 3]);
        u[b + 3] = _mm512_unpackhi_epi64(t[b + 1], t[b + 3]);
    }
    let mut out = [_mm512_setzero_si512(); 16];
    for j in 0..4 {
        let (a, b, c, d) = (u[j], u[4 + j], u[8 + j], u[12 + j]);
        let v0 = _mm512_shuffle_i32x4::<0x44>(a, b);
        let v1 = _mm512_shuffle_i32x4::<0xEE>(a, b);
        let v2 = _mm512_shuffle_i32x4::<0x44>(c, d);
        let v3 = _mm512_shuffle_i32x4::<0xEE>(c, d);
        out[j] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
        out[4 + j] = _mm512_shuffle_i32x4::<0xDD>(v0, v2);
        out[8 + j] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
        out[12 + j] = _mm512_shuffle_i32x4::<0xDD>(v1, v3);
    }
    out
}

/// 8 lanes' keys into the word-major CV: one 8×8 transpose.
pub fn keys8(keys: &[&[u32; 8]; 8], cv: &mut [[u32; 8]; 8]) {
    // SAFETY: `hash_many` selects this backend only when the CPU reports AVX2.
    unsafe { keys8_avx2(keys, cv) }
}

#[target_feature(enable = "avx2")]
unsafe fn keys8_avx2(keys: &[&[u32; 8]; 8], cv: &mut [[u32; 8]; 8]) {
    // SAFETY: each key is 32 readable bytes; unaligned loads.
    let r: [__m256i; 8] =
        std::array::from_fn(|i| unsafe { _mm256_loadu_si256(keys[i].as_ptr() as *const __m256i) });
    for (w, v) in transpose8(r).into_iter().enumerate() {
        // SAFETY: `cv[w]` is 32 writable bytes; unaligned store.
        unsafe { _mm256_storeu_si256(cv[w].as_mut_ptr() as *mut __m256i, v) };
    }
}

/// Transpose an 8×8 matrix of 32-bit words held in 8 AVX2 registers:
/// interleave 32-bit then 64-bit words within 128-bit lanes, then swap
/// 128-bit lanes across registers.
#[target_feature(enable = "avx2")]
fn transpose8(r: [__m256i; 8]) -> [__m256i; 8] {
    let t: [__m256i; 8] = std::array::from_fn(|i| {
        let (a, b) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm256_unpacklo_epi32(a, b)
        } else {
            _mm256_unpackhi_epi32(a, b)
        }
    });
    // u[4g + j], 128-bit lane k: rows 4g..4g+4 of word 4k + j.
    let u = [
        _mm256_unpacklo_epi64(t[0], t[2]),
        _mm256_unpackhi_epi64(t[0], t[2]),
        _mm256_unpacklo_epi64(t[1], t[3]),
        _mm256_unpackhi_epi64(t[1], t[3]),
        _mm256_unpacklo_epi64(t[4], t[6]),
        _mm256_unpackhi_epi64(t[4], t[6]),
        _mm256_unpacklo_epi64(t[5], t[7]),
        _mm256_unpackhi_epi64(t[5], t[7]),
    ];
    let mut out = [_mm256_setzero_si256(); 8];
    for j in 0..4 {
        out[j] = _mm256_permute2x128_si256::<0x20>(u[j], u[4 + j]);
        out[4 + j] = _mm256_permute2x128_si256::<0x31>(u[j], u[4 + j]);
    }
    out
}

/// Gather 8 lanes' blocks into word-major order: two 8×8 transposes of
/// 32-bit words in AVX2 registers (words 0..8, then 8..16).
pub fn gather8(rows: &[&[u8; 64]; 8], msg: &mut [[u32; 8]; 16]) {
    // SAFETY: `hash_many` selects this backend only when the CPU reports AVX2.
    unsafe { gather8_avx2(rows, msg) }
}

#[target_feature(enable = "avx2")]
unsafe fn gather8_avx2(rows: &[&[u8; 64]; 8], msg: &mut [[u32; 8]; 16]) {
    for half in 0..2 {
        // SAFETY: each row is 64 readable bytes; this half's 32 start at 32 * half.
        let r: [__m256i; 8] = std::array::from_fn(|i| unsafe {
            _mm256_loadu_si256(rows[i].as_ptr().add(32 * half) as *const __m256i)
        });
        for (w, v) in transpose8(r).into_iter().enumerate() {
            // SAFETY: `msg[w]` is 32 writable bytes; unaligned store.
            unsafe { _mm256_storeu_si256(msg[8 * half + w].as_mut_ptr() as *mut __m256i, v) };
        }
    }
}

/// `chunk16` on AVX2: up to 8 one-chunk messages start to end, the CVs in
/// registers between blocks, keys and blocks transposed in (8×8 word
/// transposes of 32-byte half rows), the CVs transposed out into `outs`.
/// AVX2 has no masked byte loads. A two-piece batch of one shape whose
/// head length is a multiple of 4 (a burst's MACs of one frame size: the
/// 56-byte immutable header, then the payload) reads every block,
/// straddling or short, by dword-masked loads from both pieces
/// (`chunk8_split`). In
/// other batches a block that is not whole inside one piece is staged
/// zero-padded in its lane's pad first (`stage_pad`); every other block is
/// read in place.
pub fn chunk8(batch: &[Input], outs: &mut [[u8; 32]], node: Node) {
    // SAFETY: `hash_many` selects this only when the CPU reports AVX2.
    unsafe { chunk8_avx2::<false>(batch, outs, node) }
}

/// `chunk8` (one-chunk messages), or `two_chunks8` if `TWO` (`node` then
/// `Chunk(0)`): the batch cut to `outs` and at most 8, then the body for
/// its shape.
#[target_feature(enable = "avx2")]
unsafe fn chunk8_avx2<const TWO: bool>(batch: &[Input], outs: &mut [[u8; 32]], node: Node) {
    let n = batch.len().min(8).min(outs.len());
    if n == 0 {
        return;
    }
    let batch = &batch[..n];
    // Compiled apart for one length and mode, as `chunk16_shaped` is.
    // SAFETY: same target features as this function.
    unsafe {
        if let Some(h) = split_shape(batch) {
            chunk8_split::<TWO>(batch, outs, node, h)
        } else if one_shape(batch) {
            chunk8_shaped::<true, TWO>(batch, outs, node)
        } else {
            chunk8_shaped::<false, TWO>(batch, outs, node)
        }
    }
}

/// `two_chunks16` on AVX2: up to 8 messages of two chunks, given whole,
/// through one of `chunk8`'s two bodies, both chunks from the same key
/// rows, each block read at its place in the message, then the root
/// parents from the chunks' CV rows in registers (`root_parents8`). The
/// same bound on the messages as `two_chunks16`'s.
pub fn two_chunks8(batch: &[Input], outs: &mut [[u8; 32]]) {
    // SAFETY: `hash_many` selects this only when the CPU reports AVX2.
    unsafe { chunk8_avx2::<true>(batch, outs, Node::Chunk(0)) }
}

/// The root parents of up to 8 two-chunk messages: lane `l`'s parent block
/// is its chunk 0's CV (the rows `left`) then its chunk 1's (`right`),
/// compressed under the key rows `key` in `batch[l]`'s mode (one mode for
/// every lane if `uniform`) with PARENT and ROOT, counter 0.
#[target_feature(enable = "avx2")]
#[inline]
fn root_parents8(
    key: [__m256i; 8],
    left: [__m256i; 8],
    right: [__m256i; 8],
    batch: &[Input],
    uniform: bool,
) -> [__m256i; 8] {
    use super::{BLOCK_LEN, PARENT, ROOT};
    let modes = match batch.first() {
        Some(first) if uniform => _mm256_set1_epi32(first.mode as i32),
        _ => {
            let mut modes = [0u32; 8];
            for (m, inp) in modes.iter_mut().zip(batch) {
                *m = inp.mode;
            }
            // SAFETY: 32 readable bytes; unaligned load.
            unsafe { _mm256_loadu_si256(modes.as_ptr() as *const __m256i) }
        }
    };
    let flags = _mm256_or_si256(modes, _mm256_set1_epi32((PARENT | ROOT) as i32));
    let m = [
        left[0], left[1], left[2], left[3], left[4], left[5], left[6], left[7], right[0], right[1],
        right[2], right[3], right[4], right[5], right[6], right[7],
    ];
    let zero = _mm256_setzero_si256();
    let len = _mm256_set1_epi32(BLOCK_LEN as i32);
    compress8!(key, m, zero, zero, len, flags)
}

/// The head length every input of `batch` shares, where every lane has
/// one shape (the first's head and tail lengths and mode) and each block
/// can be read by dword-masked loads from its two pieces (`chunk8_split`):
/// a head length that is a multiple of 4 (no dword straddles the pieces),
/// no caller-padded block, a tail, of at least 4 bytes where the message
/// ends inside a dword (that dword is read as the 4 bytes ending the
/// message, then shifted). A burst's MACs of one frame size (the
/// 56-byte immutable header, then the payload) have this shape. One pass
/// that stops at the first lane that differs.
#[inline(always)]
fn split_shape(batch: &[Input]) -> Option<usize> {
    let first = batch.first()?;
    let (h, t) = (first.head.len(), first.tail.len());
    // Two pieces only: a message whole in its head reads its blocks in
    // place faster through `chunk8_shaped` (7-13 % fewer instructions at
    // 64 and 1024 bytes).
    let fits = t > 0 && h.is_multiple_of(4) && ((h + t).is_multiple_of(4) || t >= 4);
    let same = |inp: &Input| {
        inp.head.len() == h && inp.tail.len() == t && inp.mode == first.mode && inp.whole.is_none()
    };
    (fits && batch.iter().all(same)).then_some(h)
}

/// `chunk8` for a batch of one shape whose lanes share one head length
/// (`split_shape`): every block is loaded straight from the two pieces, as
/// each 32-byte half row's dwords from the head (a plain load where the
/// head holds the whole half, else `vpmaskmovd`) or'ed with its dwords
/// from the tail (likewise), and the message's last bytes where it ends
/// inside a dword or'ed into that word's message row. Which dwords come
/// from where is the same for every lane, so it is decided once per half
/// block, not per lane: nothing is staged, and no load waits on a store.
/// `batch`'s head length is `h`. If `TWO`, `batch` is two-chunk messages:
/// their chunk 0, then their chunk 1, through the block loop below, each
/// block loaded from its place in the message, then the root parents, as
/// `chunk16_shaped` does.
#[target_feature(enable = "avx2")]
unsafe fn chunk8_split<const TWO: bool>(
    batch: &[Input],
    outs: &mut [[u8; 32]],
    node: Node,
    h: usize,
) {
    let n = batch.len();
    let Some(first) = batch.first() else {
        return;
    };
    let key = key_cvs8(batch);
    let (mut cv, mut left) = (key, key);
    // The message's length (every lane's), for its pieces and its end.
    let len = first.len();
    for pass in 0..1 + TWO as usize {
        let (base, cap, node) = pass_chunk(TWO, pass, node);
        let chunk = chunk_len(first, base, cap);
        let most = chunk.div_ceil(BLOCK_LEN).max(1);
        // Lanes past `n` read the first lane's pieces: all eight lanes load
        // alike, so each half block's loads are one straight sequence (their
        // CVs are never stored).
        let (mut heads, mut tails) = ([first.head.as_ptr(); 8], [first.tail.as_ptr(); 8]);
        for (l, inp) in batch.iter().enumerate() {
            (heads[l], tails[l]) = (inp.head.as_ptr(), inp.tail.as_ptr());
        }
        // The message's last `len % 4` bytes, each lane's as the low bytes of
        // a word: read as the 4 bytes ending the message (inside the tail, by
        // `split_shape`), shifted down past the bytes before them.
        let rem = len % 4;
        let last_word = (rem != 0).then(|| {
            let at = len - 4 - h;
            let mut w = [0u32; 8];
            for (w, t) in w.iter_mut().zip(&tails[..n]) {
                // SAFETY: every lane's tail is `len - h` >= 4 bytes long
                // (`split_shape`), so bytes `at..at + 4` are inside it.
                let word = unsafe { (t.add(at) as *const u32).read_unaligned() };
                *w = u32::from_le(word) >> (8 * (4 - rem));
            }
            // SAFETY: 32 readable bytes; unaligned load.
            (len / 4, unsafe {
                _mm256_loadu_si256(w.as_ptr() as *const __m256i)
            })
        });
        let dword_at = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
        for b in 0..most {
            // The block's offset in its chunk, and in the message.
            let start = b * BLOCK_LEN;
            let at = base + start;
            let (block_len, f) = uniform_block(chunk, first.mode, b, most, node);
            let mut m = [_mm256_setzero_si256(); 16];
            for half in 0..2 {
                let p0 = at + 32 * half;
                let pos = _mm256_add_epi32(_mm256_set1_epi32(p0 as i32), dword_at);
                // Dwords wholly in the head: p + 4 <= h. In the tail: p >= h
                // and p + 4 <= len.
                let in_head = _mm256_cmpgt_epi32(_mm256_set1_epi32(h as i32 - 3), pos);
                let in_tail = _mm256_andnot_si256(
                    _mm256_cmpgt_epi32(_mm256_set1_epi32(h as i32), pos),
                    _mm256_cmpgt_epi32(_mm256_set1_epi32(len as i32 - 3), pos),
                );
                let tail_some = _mm256_movemask_ps(_mm256_castsi256_ps(in_tail)) != 0;
                let head = if p0 + 32 <= h {
                    PIECE_ALL
                } else if p0 + 4 <= h {
                    PIECE_SOME
                } else {
                    PIECE_NONE
                };
                let tail = if p0 >= h && p0 + 32 <= len {
                    PIECE_ALL
                } else if tail_some {
                    PIECE_SOME
                } else {
                    PIECE_NONE
                };
                let (hp, tp) = (
                    heads.map(|p| p.wrapping_add(p0)),
                    tails.map(|p| p.wrapping_add(p0).wrapping_sub(h)),
                );
                // Which loads a half needs is the same in every lane, so it is
                // chosen here, once, and each choice is its own unrolled
                // sequence of eight lanes' loads (no per-lane branches). A half
                // wholly in the head has no tail dword, and a tail of kind ALL
                // starts at or after `h`, so no head dword: the arms below that
                // ignore one piece lose nothing.
                // SAFETY: each kind is chosen by the bounds that `half_rows8`
                // requires of it (see there).
                let r = unsafe {
                    match (head, tail) {
                        (PIECE_ALL, _) => {
                            half_rows8::<PIECE_ALL, PIECE_NONE>(&hp, &tp, in_head, in_tail)
                        }
                        (PIECE_SOME, PIECE_SOME) => {
                            half_rows8::<PIECE_SOME, PIECE_SOME>(&hp, &tp, in_head, in_tail)
                        }
                        (PIECE_SOME, _) => {
                            half_rows8::<PIECE_SOME, PIECE_NONE>(&hp, &tp, in_head, in_tail)
                        }
                        (_, PIECE_ALL) => {
                            half_rows8::<PIECE_NONE, PIECE_ALL>(&hp, &tp, in_head, in_tail)
                        }
                        (_, PIECE_SOME) => {
                            half_rows8::<PIECE_NONE, PIECE_SOME>(&hp, &tp, in_head, in_tail)
                        }
                        _ => continue, // Past the message: the rows stay zero.
                    }
                };
                m[8 * half..8 * half + 8].copy_from_slice(&transpose8(r));
            }
            if let Some((word, v)) = last_word {
                if (at / 4..at / 4 + 16).contains(&word) {
                    m[word - at / 4] = _mm256_or_si256(m[word - at / 4], v);
                }
            }
            let (counter_lo, counter_hi) = (
                _mm256_set1_epi32(node.counter() as i32),
                _mm256_setzero_si256(),
            );
            let (block_len, flags) = (
                _mm256_set1_epi32(block_len as i32),
                _mm256_set1_epi32(f as i32),
            );
            cv = compress8!(cv, m, counter_lo, counter_hi, block_len, flags);
        }
        if TWO && pass == 0 {
            (left, cv) = (cv, key);
        }
    }
    if TWO {
        cv = root_parents8(key, left, cv, batch, true);
    }
    store_cvs8(cv, &mut outs[..n]);
}

/// How a half row's dwords come from one piece of a message (`chunk8_split`).
const PIECE_NONE: u8 = 0;
/// Every dword of the half row is in the piece: one plain load.
const PIECE_ALL: u8 = 1;
/// Some are: a masked load of those.
const PIECE_SOME: u8 = 2;

/// Eight lanes' half rows: from `hp[l]` the dwords `HEAD` says (all, or
/// those `in_head` selects, or none), or'ed with those `TAIL` says from
/// `tp[l]` (all, or those `in_tail` selects, or none). Unrolled over the
/// lanes with the kinds fixed, so the loads run without a branch.
///
/// # Safety
/// For a piece of kind `PIECE_ALL`, each lane's pointer has 32 readable
/// bytes; of kind `PIECE_SOME`, each dword its mask selects is readable
/// (`vpmaskmovd` neither reads nor faults on the others).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn half_rows8<const HEAD: u8, const TAIL: u8>(
    hp: &[*const u8; 8],
    tp: &[*const u8; 8],
    in_head: __m256i,
    in_tail: __m256i,
) -> [__m256i; 8] {
    let mut r = [_mm256_setzero_si256(); 8];
    for l in 0..8 {
        // SAFETY: the caller's bounds for each kind (above); unaligned.
        let (hv, tv) = unsafe {
            let hv = match HEAD {
                PIECE_ALL => _mm256_loadu_si256(hp[l] as *const __m256i),
                PIECE_SOME => _mm256_maskload_epi32(hp[l] as *const i32, in_head),
                _ => _mm256_setzero_si256(),
            };
            let tv = match TAIL {
                PIECE_ALL => _mm256_loadu_si256(tp[l] as *const __m256i),
                PIECE_SOME => _mm256_maskload_epi32(tp[l] as *const i32, in_tail),
                _ => _mm256_setzero_si256(),
            };
            (hv, tv)
        };
        r[l] = match (HEAD, TAIL) {
            (_, PIECE_NONE) => hv,
            (PIECE_NONE, _) => tv,
            _ => _mm256_or_si256(hv, tv),
        };
    }
    r
}

/// `chunk8` for a batch of `n` ≥ 1 inputs (`batch` already cut to `outs`),
/// all of one length and mode if `UNIFORM`; if `TWO`, two-chunk messages,
/// as `chunk16_shaped` takes them.
#[target_feature(enable = "avx2")]
unsafe fn chunk8_shaped<const UNIFORM: bool, const TWO: bool>(
    batch: &[Input],
    outs: &mut [[u8; 32]],
    node: Node,
) {
    use super::ZERO_BLOCK;
    let n = batch.len();
    let Some(first) = batch.first() else {
        return;
    };
    let uniform = UNIFORM;
    let key = key_cvs8(batch);
    let (mut cv, mut left) = (key, key);
    for pass in 0..1 + TWO as usize {
        let (base, cap, node) = pass_chunk(TWO, pass, node);
        let first_len = chunk_len(first, base, cap);
        let (start_flag, end_flags) = (node.start_flag(), node.end_flags());
        let (lens, modes, most) = lane_shapes::<8>(batch, uniform, base, cap);
        // SAFETY: 32 readable bytes each; unaligned loads.
        let (lens_v, modes_v) = unsafe {
            (
                _mm256_loadu_si256(lens.as_ptr() as *const __m256i),
                _mm256_loadu_si256(modes.as_ptr() as *const __m256i),
            )
        };
        let blocks_v = _mm256_max_epu32(
            _mm256_srli_epi32::<6>(_mm256_add_epi32(lens_v, _mm256_set1_epi32(63))),
            _mm256_set1_epi32(1),
        );
        let all_end = _mm256_cmpeq_epi32(blocks_v, _mm256_set1_epi32(most as i32));
        let ends_together = uniform || _mm256_movemask_ps(_mm256_castsi256_ps(all_end)) == 0xFF;
        let mut done = cv;
        // Uninitialised: only `stage_pad` writes a pad (all 64 bytes) and only
        // a pad it wrote is read; zeroing eight every call cost 16 stores.
        let mut pads = std::mem::MaybeUninit::<Pads>::uninit();
        let pad_base = pads.as_mut_ptr().cast::<u8>();
        let zero_block: &'static [u8; BLOCK_LEN] = &ZERO_BLOCK;
        for b in 0..most {
            // The block's offset in its chunk, and in the message.
            let start = b * BLOCK_LEN;
            let at = base + start;
            let last = _mm256_cmpeq_epi32(blocks_v, _mm256_set1_epi32(b as i32 + 1));
            let (block_len, flags) = if uniform {
                let (len, f) = uniform_block(first_len, first.mode, b, most, node);
                (_mm256_set1_epi32(len as i32), _mm256_set1_epi32(f as i32))
            } else {
                let rest = _mm256_max_epi32(
                    _mm256_sub_epi32(lens_v, _mm256_set1_epi32(start as i32)),
                    _mm256_setzero_si256(),
                );
                let len = _mm256_min_epu32(rest, _mm256_set1_epi32(BLOCK_LEN as i32));
                let mut f = modes_v;
                if b == 0 {
                    f = _mm256_or_si256(f, _mm256_set1_epi32(start_flag as i32));
                }
                f = _mm256_or_si256(
                    f,
                    _mm256_and_si256(last, _mm256_set1_epi32(end_flags as i32)),
                );
                (len, f)
            };
            // Each lane's block address: in place where the block is whole in
            // the head (the first pass, which stops at the first lane where it
            // is not) or in either piece, else staged in the lane's pad; the
            // zero block for lanes past `batch` and lanes whose message ended.
            let mut src = [zero_block.as_ptr(); 8];
            let in_heads = head_blocks(batch, at, &mut src);
            if !in_heads {
                for (l, (s, inp)) in src.iter_mut().zip(batch).enumerate() {
                    *s = if let Some(w) = inp.whole {
                        if b == 0 {
                            w.as_ptr()
                        } else {
                            zero_block.as_ptr()
                        }
                    } else if at >= inp.len() && start > 0 {
                        zero_block.as_ptr()
                    } else if let Some(row) = inp.direct(at) {
                        row.as_ptr()
                    } else {
                        let pad = pad_base.wrapping_add(BLOCK_LEN * l);
                        // SAFETY: same target features as this function; `pad`
                        // is lane `l`'s 64 bytes of `pads` (l < 8), writable.
                        unsafe { stage_pad(inp, at, pad) };
                        pad.cast_const()
                    };
                }
            }
            let mut m = [_mm256_setzero_si256(); 16];
            for h in 0..2 {
                let mut r = [_mm256_setzero_si256(); 8];
                for (r, s) in r.iter_mut().zip(src) {
                    // SAFETY: `s` has 64 readable bytes (a block in place, a
                    // pad, or the zero block); unaligned load of half `h`.
                    *r = unsafe { _mm256_loadu_si256(s.add(32 * h) as *const __m256i) };
                }
                m[8 * h..8 * h + 8].copy_from_slice(&transpose8(r));
            }
            let (counter_lo, counter_hi) = (
                _mm256_set1_epi32(node.counter() as i32),
                _mm256_setzero_si256(),
            );
            cv = compress8!(cv, m, counter_lo, counter_hi, block_len, flags);
            if !ends_together {
                for w in 0..8 {
                    done[w] = _mm256_blendv_epi8(done[w], cv[w], last);
                }
            }
        }
        if !ends_together {
            cv = done;
        }
        if TWO && pass == 0 {
            (left, cv) = (cv, key);
        }
    }
    if TWO {
        cv = root_parents8(key, left, cv, batch, uniform);
    }
    store_cvs8(cv, &mut outs[..n]);
}

/// Eight lanes' staging pads, aligned so each 32-byte half is one line's.
#[repr(C, align(64))]
struct Pads([[u8; 64]; 8]);

/// Bytes `start..start + 64` of `inp`, zero-padded past its end, into the
/// 64 bytes at `pad`: the pad zeroed whole, then each piece's bytes copied
/// in by two overlapping loads and stores of the widest size that fits (no
/// `memcpy` call for a few bytes, no per-byte loop). Every byte of the pad
/// is written, so it may start uninitialised.
///
/// # Safety
/// `pad` has 64 writable bytes; the CPU has AVX2.
#[target_feature(enable = "avx2")]
unsafe fn stage_pad(inp: &Input, start: usize, pad: *mut u8) {
    let (head, tail) = (inp.head, inp.tail);
    let h = head.len();
    let from_head = head.get(start.min(h)..).unwrap_or(&[]);
    let nh = from_head.len().min(64);
    let from_tail = tail.get(start.saturating_sub(h)..).unwrap_or(&[]);
    let nt = from_tail.len().min(64 - nh);
    let p = pad;
    // SAFETY: `pad` is 64 writable bytes (the caller's bound); unaligned stores.
    unsafe {
        _mm256_storeu_si256(p as *mut __m256i, _mm256_setzero_si256());
        _mm256_storeu_si256(p.add(32) as *mut __m256i, _mm256_setzero_si256());
    }
    // SAFETY: `nh + nt <= 64`, so both copies stay inside `pad`.
    unsafe {
        copy_short(&from_head[..nh], p);
        copy_short(&from_tail[..nt], p.add(nh));
    }
}

/// Copy `src` (at most 64 bytes) to `dst` with at most two overlapping
/// loads and stores of one width.
///
/// # Safety
/// `dst` has `src.len()` writable bytes; the CPU has AVX2.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn copy_short(src: &[u8], dst: *mut u8) {
    let (s, n) = (src.as_ptr(), src.len());
    // SAFETY: every load reads `src[i..i + w]` with `i + w <= n`, every
    // store writes `dst[i..i + w]` likewise (the caller's bound); all
    // unaligned.
    unsafe {
        match n {
            0 => {}
            1..=3 => {
                *dst = *s;
                *dst.add(n / 2) = *s.add(n / 2);
                *dst.add(n - 1) = *s.add(n - 1);
            }
            4..=7 => {
                let (a, b) = (
                    (s as *const u32).read_unaligned(),
                    (s.add(n - 4) as *const u32).read_unaligned(),
                );
                (dst as *mut u32).write_unaligned(a);
                (dst.add(n - 4) as *mut u32).write_unaligned(b);
            }
            8..=15 => {
                let (a, b) = (
                    (s as *const u64).read_unaligned(),
                    (s.add(n - 8) as *const u64).read_unaligned(),
                );
                (dst as *mut u64).write_unaligned(a);
                (dst.add(n - 8) as *mut u64).write_unaligned(b);
            }
            16..=31 => {
                let (a, b) = (
                    _mm_loadu_si128(s as *const __m128i),
                    _mm_loadu_si128(s.add(n - 16) as *const __m128i),
                );
                _mm_storeu_si128(dst as *mut __m128i, a);
                _mm_storeu_si128(dst.add(n - 16) as *mut __m128i, b);
            }
            _ => {
                let (a, b) = (
                    _mm256_loadu_si256(s as *const __m256i),
                    _mm256_loadu_si256(s.add(n - 32) as *const __m256i),
                );
                _mm256_storeu_si256(dst as *mut __m256i, a);
                _mm256_storeu_si256(dst.add(n - 32) as *mut __m256i, b);
            }
        }
    }
}

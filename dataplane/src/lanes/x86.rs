//! x86_64 backends: 16 lanes in AVX-512 registers, 8 in AVX2. One macro
//! writes the seven BLAKE3 rounds for both, so the two differ only in the
//! vector operations they plug in.
//!
//! Every intrinsic is called inside a `#[target_feature]` function, and those
//! functions are reached only through `hash_many`, which dispatches to a level
//! after checking at run time that the CPU supports it (`Level::or_supported`).

use super::{Step, IV, MSG_SCHEDULE};
use std::arch::x86_64::*;

macro_rules! rounds {
    ($v:ident, $m:ident, $add:ident, $xor:ident, $r16:ident, $r12:ident, $r8:ident, $r7:ident) => {
        macro_rules! g {
            ($a:expr, $b:expr, $c:expr, $d:expr, $x:expr, $y:expr) => {
                $v[$a] = $add($add($v[$a], $v[$b]), $x);
                $v[$d] = $r16($xor($v[$d], $v[$a]));
                $v[$c] = $add($v[$c], $v[$d]);
                $v[$b] = $r12($xor($v[$b], $v[$c]));
                $v[$a] = $add($add($v[$a], $v[$b]), $y);
                $v[$d] = $r8($xor($v[$d], $v[$a]));
                $v[$c] = $add($v[$c], $v[$d]);
                $v[$b] = $r7($xor($v[$b], $v[$c]));
            };
        }
        for s in &MSG_SCHEDULE {
            g!(0, 4, 8, 12, $m[s[0]], $m[s[1]]);
            g!(1, 5, 9, 13, $m[s[2]], $m[s[3]]);
            g!(2, 6, 10, 14, $m[s[4]], $m[s[5]]);
            g!(3, 7, 11, 15, $m[s[6]], $m[s[7]]);
            g!(0, 5, 10, 15, $m[s[8]], $m[s[9]]);
            g!(1, 6, 11, 12, $m[s[10]], $m[s[11]]);
            g!(2, 7, 8, 13, $m[s[12]], $m[s[13]]);
            g!(3, 4, 9, 14, $m[s[14]], $m[s[15]]);
        }
    };
}

pub fn compress16(s: &mut Step<16>) {
    // SAFETY: `hash_many` selects this backend only when the CPU reports AVX-512F.
    unsafe { compress16_avx512(s) }
}

pub fn compress8(s: &mut Step<8>) {
    // SAFETY: `hash_many` selects this backend only when the CPU reports AVX2.
    unsafe { compress8_avx2(s) }
}

#[target_feature(enable = "avx512f")]
unsafe fn compress16_avx512(s: &mut Step<16>) {
    #[inline(always)]
    fn ld(a: &[u32; 16]) -> __m512i {
        // SAFETY: `a` is 64 readable bytes; the load has no alignment requirement.
        unsafe { _mm512_loadu_si512(a.as_ptr() as *const _) }
    }
    let add = |a, b| _mm512_add_epi32(a, b);
    let xor = |a, b| _mm512_xor_si512(a, b);
    let r16 = |a| _mm512_ror_epi32::<16>(a);
    let r12 = |a| _mm512_ror_epi32::<12>(a);
    let r8 = |a| _mm512_ror_epi32::<8>(a);
    let r7 = |a| _mm512_ror_epi32::<7>(a);
    let m: [__m512i; 16] = std::array::from_fn(|w| ld(&s.msg[w]));
    let mut v: [__m512i; 16] = [
        ld(&s.cv[0]),
        ld(&s.cv[1]),
        ld(&s.cv[2]),
        ld(&s.cv[3]),
        ld(&s.cv[4]),
        ld(&s.cv[5]),
        ld(&s.cv[6]),
        ld(&s.cv[7]),
        _mm512_set1_epi32(IV[0] as i32),
        _mm512_set1_epi32(IV[1] as i32),
        _mm512_set1_epi32(IV[2] as i32),
        _mm512_set1_epi32(IV[3] as i32),
        ld(&s.counter_lo),
        ld(&s.counter_hi),
        ld(&s.block_len),
        ld(&s.flags),
    ];
    rounds!(v, m, add, xor, r16, r12, r8, r7);
    for w in 0..8 {
        // SAFETY: `s.cv[w]` is 64 writable bytes; unaligned store.
        unsafe { _mm512_storeu_si512(s.cv[w].as_mut_ptr() as *mut _, xor(v[w], v[w + 8])) };
    }
}

#[target_feature(enable = "avx2")]
unsafe fn compress8_avx2(s: &mut Step<8>) {
    #[inline(always)]
    fn ld(a: &[u32; 8]) -> __m256i {
        // SAFETY: `a` is 32 readable bytes; the load has no alignment requirement.
        unsafe { _mm256_loadu_si256(a.as_ptr() as *const __m256i) }
    }
    let rot16_mask = _mm256_setr_epi8(
        2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9,
        14, 15, 12, 13,
    );
    let rot8_mask = _mm256_setr_epi8(
        1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8,
        13, 14, 15, 12,
    );
    let add = |a, b| _mm256_add_epi32(a, b);
    let xor = |a, b| _mm256_xor_si256(a, b);
    let r16 = |a| _mm256_shuffle_epi8(a, rot16_mask);
    let r12 = |a| _mm256_or_si256(_mm256_srli_epi32::<12>(a), _mm256_slli_epi32::<20>(a));
    let r8 = |a| _mm256_shuffle_epi8(a, rot8_mask);
    let r7 = |a| _mm256_or_si256(_mm256_srli_epi32::<7>(a), _mm256_slli_epi32::<25>(a));
    let m: [__m256i; 16] = std::array::from_fn(|w| ld(&s.msg[w]));
    let mut v: [__m256i; 16] = [
        ld(&s.cv[0]),
        ld(&s.cv[1]),
        ld(&s.cv[2]),
        ld(&s.cv[3]),
        ld(&s.cv[4]),
        ld(&s.cv[5]),
        ld(&s.cv[6]),
        ld(&s.cv[7]),
        _mm256_set1_epi32(IV[0] as i32),
        _mm256_set1_epi32(IV[1] as i32),
        _mm256_set1_epi32(IV[2] as i32),
        _mm256_set1_epi32(IV[3] as i32),
        ld(&s.counter_lo),
        ld(&s.counter_hi),
        ld(&s.block_len),
        ld(&s.flags),
    ];
    rounds!(v, m, add, xor, r16, r12, r8, r7);
    for w in 0..8 {
        // SAFETY: `s.cv[w]` is 32 writable bytes; unaligned store.
        unsafe { _mm256_storeu_si256(s.cv[w].as_mut_ptr() as *mut __m256i, xor(v[w], v[w + 8])) };
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

/// The CVs of 16 lanes, lane-major: `out[l][..8]` is lane `l`'s CV.
pub fn scatter16(cv: &[[u32; 16]; 8], out: &mut [[u32; 16]; 16]) {
    // SAFETY: `hash_many` selects this backend only when the CPU reports AVX-512F.
    unsafe { scatter16_avx512(cv, out) }
}

#[target_feature(enable = "avx512f")]
unsafe fn scatter16_avx512(cv: &[[u32; 16]; 8], out: &mut [[u32; 16]; 16]) {
    let r: [__m512i; 16] = std::array::from_fn(|w| {
        if w < 8 {
            // SAFETY: `cv[w]` is 64 readable bytes; unaligned load.
            unsafe { _mm512_loadu_si512(cv[w].as_ptr() as *const _) }
        } else {
            _mm512_setzero_si512()
        }
    });
    for (l, v) in transpose16(r).into_iter().enumerate() {
        // SAFETY: `out[l]` is 64 writable bytes; unaligned store.
        unsafe { _mm512_storeu_si512(out[l].as_mut_ptr() as *mut _, v) };
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
        for j in 0..4 {
            let lo = _mm256_permute2x128_si256::<0x20>(u[j], u[4 + j]);
            let hi = _mm256_permute2x128_si256::<0x31>(u[j], u[4 + j]);
            // SAFETY: `msg[w]` is 32 writable bytes; unaligned stores.
            unsafe {
                _mm256_storeu_si256(msg[8 * half + j].as_mut_ptr() as *mut __m256i, lo);
                _mm256_storeu_si256(msg[8 * half + 4 + j].as_mut_ptr() as *mut __m256i, hi);
            }
        }
    }
}

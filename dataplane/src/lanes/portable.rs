//! The portable backend: `LANES` lanes as plain arrays, one operation per
//! lane in simple loops the compiler can vectorise with baseline SIMD.

#![allow(clippy::needless_range_loop)]

use super::{Step, IV, MSG_PERMUTATION};

pub const LANES: usize = 4;

#[inline(always)]
fn g(
    v: &mut [[u32; LANES]; 16],
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    x: &[u32; LANES],
    y: &[u32; LANES],
) {
    for l in 0..LANES {
        v[a][l] = v[a][l].wrapping_add(v[b][l]).wrapping_add(x[l]);
        v[d][l] = (v[d][l] ^ v[a][l]).rotate_right(16);
        v[c][l] = v[c][l].wrapping_add(v[d][l]);
        v[b][l] = (v[b][l] ^ v[c][l]).rotate_right(12);
        v[a][l] = v[a][l].wrapping_add(v[b][l]).wrapping_add(y[l]);
        v[d][l] = (v[d][l] ^ v[a][l]).rotate_right(8);
        v[c][l] = v[c][l].wrapping_add(v[d][l]);
        v[b][l] = (v[b][l] ^ v[c][l]).rotate_right(7);
    }
}

pub fn compress(s: &mut Step<LANES>) {
    let mut v = [[0u32; LANES]; 16];
    v[..8].copy_from_slice(&s.cv);
    for i in 0..4 {
        v[8 + i] = [IV[i]; LANES];
    }
    v[12] = s.counter_lo;
    v[13] = s.counter_hi;
    v[14] = s.block_len;
    v[15] = s.flags;
    let mut m = s.msg;
    for round in 0..7 {
        g(&mut v, 0, 4, 8, 12, &m[0], &m[1]);
        g(&mut v, 1, 5, 9, 13, &m[2], &m[3]);
        g(&mut v, 2, 6, 10, 14, &m[4], &m[5]);
        g(&mut v, 3, 7, 11, 15, &m[6], &m[7]);
        g(&mut v, 0, 5, 10, 15, &m[8], &m[9]);
        g(&mut v, 1, 6, 11, 12, &m[10], &m[11]);
        g(&mut v, 2, 7, 8, 13, &m[12], &m[13]);
        g(&mut v, 3, 4, 9, 14, &m[14], &m[15]);
        if round < 6 {
            let prev = m;
            for (w, &from) in m.iter_mut().zip(&MSG_PERMUTATION) {
                *w = prev[from];
            }
        }
    }
    for w in 0..8 {
        for l in 0..LANES {
            s.cv[w][l] = v[w][l] ^ v[w + 8][l];
        }
    }
}

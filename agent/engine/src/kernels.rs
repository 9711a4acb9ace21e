//! Quantized matrix-vector kernels for decode (GGML Q4_1 and Q8_0 weights).
//!
//! At load, rows are repacked in groups of eight: for each 32-value block, the eight rows'
//! scales side by side, then their quants four bytes at a time, row after row. One
//! broadcast of four input bytes then feeds eight rows in one integer multiply-add, and the
//! eight results land in separate lanes, so no horizontal sums are needed. The input is
//! quantized to 8-bit blocks of 32 as llama.cpp does. AVX-VNNI or AVX2 code is chosen at
//! run time; other CPUs use the scalar code, which computes the same sums.

use std::sync::{Mutex, PoisonError};

use super::team::Team;

/// Values per quantization block for every supported type.
pub const BLOCK: usize = 32;
/// Rows interleaved in the packed layout.
const GROUP: usize = 8;

/// Weight formats with our own kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QKind {
    /// f16 scale, f16 min, 32 x 4-bit: value = d * q + m.
    Q4_1,
    /// f16 scale, 32 x i8: value = d * q.
    Q8_0,
}

impl QKind {
    /// Bytes of one GGML block.
    pub fn block_bytes(self) -> usize {
        match self {
            QKind::Q4_1 => 20,
            QKind::Q8_0 => 34,
        }
    }

    /// Bytes of the scale fields of one GGML block (f16 d, and f16 m for Q4_1).
    fn scale_bytes(self) -> usize {
        match self {
            QKind::Q4_1 => 4,
            QKind::Q8_0 => 2,
        }
    }
}

/// A quantized matrix of `rows` output features of `cols` inputs, in the packed layout
/// (rows padded with zeros to a multiple of eight).
#[derive(Debug, Clone)]
pub struct QMatrix {
    pub kind: QKind,
    pub rows: usize,
    pub cols: usize,
    data: Vec<u8>,
}

/// Where one byte of a GGML block goes inside the packed record of its group and block.
/// Scales come first (all eight d, then all eight m), then quants in 4-byte steps.
fn packed_offset(kind: QKind, lane: usize, byte: usize) -> usize {
    let scales = kind.scale_bytes();
    if byte < scales {
        // Field f (d = 0, m = 1) of lane `lane`.
        let (field, half) = (byte / 2, byte % 2);
        return field * 2 * GROUP + lane * 2 + half;
    }
    let j = byte - scales;
    scales * GROUP + (j / 4) * 4 * GROUP + lane * 4 + j % 4
}

impl QMatrix {
    /// Repacks raw GGML bytes (row-major blocks); `None` if their size does not match.
    pub fn new(kind: QKind, rows: usize, cols: usize, ggml: Vec<u8>) -> Option<Self> {
        let bb = kind.block_bytes();
        let ok = cols.is_multiple_of(BLOCK) && ggml.len() == rows * cols / BLOCK * bb;
        if !ok {
            return None;
        }
        let blocks = cols / BLOCK;
        let record = GROUP * bb;
        let mut data = vec![0u8; rows.div_ceil(GROUP) * blocks * record];
        for (r, row) in ggml.chunks_exact(blocks * bb).enumerate() {
            let (group, lane) = (r / GROUP, r % GROUP);
            for (b, blk) in row.chunks_exact(bb).enumerate() {
                let rec = (group * blocks + b) * record;
                for (byte, &v) in blk.iter().enumerate() {
                    data[rec + packed_offset(kind, lane, byte)] = v;
                }
            }
        }
        Some(Self {
            kind,
            rows,
            cols,
            data,
        })
    }

    fn blocks(&self) -> usize {
        self.cols / BLOCK
    }

    fn record(&self) -> usize {
        GROUP * self.kind.block_bytes()
    }

    /// The packed records of group `g`, one per block.
    fn group(&self, g: usize) -> &[u8] {
        let n = self.blocks() * self.record();
        &self.data[g * n..(g + 1) * n]
    }

    /// Dequantizes row `r` into `out` (embedding lookups, prefill copies).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let (kind, lane) = (self.kind, r % GROUP);
        let at = |rec: &[u8], byte: usize| rec[packed_offset(kind, lane, byte)];
        let f16 = |rec: &[u8], byte: usize| {
            half::f16::from_le_bytes([at(rec, byte), at(rec, byte + 1)]).to_f32()
        };
        let group = self.group(r / GROUP);
        for (rec, chunk) in group
            .chunks_exact(self.record())
            .zip(out.chunks_exact_mut(BLOCK))
        {
            let d = f16(rec, 0);
            match kind {
                QKind::Q4_1 => {
                    let m = f16(rec, 2);
                    for j in 0..16 {
                        let q = at(rec, 4 + j);
                        chunk[j] = d * f32::from(q & 0x0F) + m;
                        chunk[j + 16] = d * f32::from(q >> 4) + m;
                    }
                }
                QKind::Q8_0 => {
                    for (j, c) in chunk.iter_mut().enumerate() {
                        *c = d * f32::from(at(rec, 2 + j) as i8);
                    }
                }
            }
        }
    }
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// One 32-value block of the quantized input: scale, scale * sum of q, values.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct Q8Block {
    d: f32,
    s: f32,
    qs: [i8; BLOCK],
}

/// Quantizes `x` (length a multiple of 32) into 8-bit blocks.
pub fn quantize_input(x: &[f32], out: &mut Vec<Q8Block>) {
    out.clear();
    out.extend(x.chunks_exact(BLOCK).map(|c| {
        let amax = c.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [0i8; BLOCK];
        let mut sum = 0i32;
        for (q, v) in qs.iter_mut().zip(c) {
            *q = (v * id).round() as i8;
            sum += i32::from(*q);
        }
        Q8Block {
            d,
            s: d * sum as f32,
            qs,
        }
    }));
}

/// Eight rows (one group) times the input: `out[lane]`.
type GroupFn = fn(QKind, &[u8], &[Q8Block], &mut [f32; GROUP]);

fn group_fn() -> GroupFn {
    #[cfg(target_arch = "x86_64")]
    match x86::level() {
        x86::Level::AvxVnni => return x86::group_vnni,
        x86::Level::Avx2 => return x86::group_avx2,
        x86::Level::None => {}
    }
    group_scalar
}

/// Whether SIMD kernels are in use on this CPU.
pub fn simd_enabled() -> bool {
    group_fn() as usize != group_scalar as GroupFn as usize
}

fn group_scalar(kind: QKind, group: &[u8], x: &[Q8Block], out: &mut [f32; GROUP]) {
    let record = GROUP * kind.block_bytes();
    let scales = kind.scale_bytes() * GROUP;
    let mut total = [0f32; GROUP];
    for (rec, a) in group.chunks_exact(record).zip(x) {
        for (lane, t) in total.iter_mut().enumerate() {
            let d = f16_at(rec, 2 * lane);
            let quant_bytes = kind.block_bytes() - kind.scale_bytes();
            let mut acc = 0i32;
            for j in 0..quant_bytes {
                let byte = rec[scales + (j / 4) * 4 * GROUP + lane * 4 + j % 4];
                match kind {
                    QKind::Q4_1 => {
                        acc += i32::from(byte & 0x0F) * i32::from(a.qs[j]);
                        acc += i32::from(byte >> 4) * i32::from(a.qs[j + 16]);
                    }
                    QKind::Q8_0 => acc += i32::from(byte as i8) * i32::from(a.qs[j]),
                }
            }
            *t += d * a.d * acc as f32;
            if kind == QKind::Q4_1 {
                *t += f16_at(rec, 2 * GROUP + 2 * lane) * a.s;
            }
        }
    }
    *out = total;
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Q8Block, QKind, GROUP};
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Level {
        None,
        Avx2,
        AvxVnni,
    }

    pub fn level() -> Level {
        static LEVEL: OnceLock<Level> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            let avx2 = is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c");
            match (avx2, is_x86_feature_detected!("avxvnni")) {
                (true, true) => Level::AvxVnni,
                (true, false) => Level::Avx2,
                _ => Level::None,
            }
        })
    }

    fn check(kind: QKind, group: &[u8], x: &[Q8Block]) {
        assert!(
            group.len() >= x.len() * GROUP * kind.block_bytes(),
            "group shorter than the input"
        );
    }

    pub fn group_avx2(kind: QKind, group: &[u8], x: &[Q8Block], out: &mut [f32; GROUP]) {
        check(kind, group, x);
        // SAFETY: selected only after runtime detection of avx2, fma and f16c; `check`
        // bounds every read below.
        unsafe {
            match kind {
                QKind::Q4_1 => q4_1_avx2(group.as_ptr(), x, out),
                QKind::Q8_0 => q8_0_avx2(group.as_ptr(), x, out),
            }
        }
    }

    pub fn group_vnni(kind: QKind, group: &[u8], x: &[Q8Block], out: &mut [f32; GROUP]) {
        check(kind, group, x);
        // SAFETY: as above, plus runtime detection of avxvnni.
        unsafe {
            match kind {
                QKind::Q4_1 => q4_1_vnni(group.as_ptr(), x, out),
                QKind::Q8_0 => q8_0_vnni(group.as_ptr(), x, out),
            }
        }
    }

    /// Input bytes `at..at + 4` of a block, in every lane.
    macro_rules! input4 {
        ($a:expr, $at:expr) => {
            _mm256_set1_epi32(std::ptr::read_unaligned(
                $a.qs.as_ptr().add($at) as *const i32
            ))
        };
    }

    /// The Q4_1 kernel; `$dot` adds one step's products (u8 weights, i8 inputs) to an
    /// accumulator of the type `$zero` makes, `$finish` turns that into i32 lanes.
    macro_rules! q4_1_kernel {
        ($p:expr, $x:expr, $out:expr, $zero:expr, $dot:ident, $finish:ident) => {{
            let mask = _mm256_set1_epi8(0x0F);
            let (mut acc, mut accm) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for (b, a) in $x.iter().enumerate() {
                let rec = $p.add(b * GROUP * 20);
                let d = _mm256_cvtph_ps(_mm_loadu_si128(rec as *const __m128i));
                let m = _mm256_cvtph_ps(_mm_loadu_si128(rec.add(16) as *const __m128i));
                let mut t = $zero;
                for s in 0..4 {
                    let w = _mm256_loadu_si256(rec.add(32 + s * 32) as *const __m256i);
                    let lo = _mm256_and_si256(w, mask);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), mask);
                    t = $dot(t, lo, input4!(a, 4 * s));
                    t = $dot(t, hi, input4!(a, 16 + 4 * s));
                }
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(a.d));
                acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps($finish(t)), acc);
                accm = _mm256_fmadd_ps(m, _mm256_set1_ps(a.s), accm);
            }
            _mm256_storeu_ps($out.as_mut_ptr(), _mm256_add_ps(acc, accm));
        }};
    }

    /// The Q8_0 kernel; `$dot` as above on |w| and sign-adjusted inputs.
    macro_rules! q8_0_kernel {
        ($p:expr, $x:expr, $out:expr, $zero:expr, $dot:ident, $finish:ident) => {{
            let mut acc = _mm256_setzero_ps();
            for (b, a) in $x.iter().enumerate() {
                let rec = $p.add(b * GROUP * 34);
                let d = _mm256_cvtph_ps(_mm_loadu_si128(rec as *const __m128i));
                let mut t = $zero;
                for s in 0..8 {
                    let w = _mm256_loadu_si256(rec.add(16 + s * 32) as *const __m256i);
                    let xv = input4!(a, 4 * s);
                    let sum = $dot($zero, _mm256_sign_epi8(w, w), _mm256_sign_epi8(xv, w));
                    t = _mm256_add_epi32(t, $finish(sum));
                }
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(a.d));
                acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(t), acc);
            }
            _mm256_storeu_ps($out.as_mut_ptr(), acc);
        }};
    }

    // AVX2: u8 x i8 products summed in pairs to i16. Eight Q4_1 steps stay below i16's
    // limit (8 * 2 * 15 * 127 = 30480); Q8_0 steps are widened one by one.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_i16(t: __m256i, w: __m256i, x: __m256i) -> __m256i {
        _mm256_add_epi16(t, _mm256_maddubs_epi16(w, x))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn widen(t: __m256i) -> __m256i {
        _mm256_madd_epi16(t, _mm256_set1_epi16(1))
    }

    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn dot_vnni(t: __m256i, w: __m256i, x: __m256i) -> __m256i {
        _mm256_dpbusd_avx_epi32(t, w, x)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn same(t: __m256i) -> __m256i {
        t
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_1_avx2(p: *const u8, x: &[Q8Block], out: &mut [f32; GROUP]) {
        q4_1_kernel!(p, x, out, _mm256_setzero_si256(), dot_i16, widen)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_0_avx2(p: *const u8, x: &[Q8Block], out: &mut [f32; GROUP]) {
        q8_0_kernel!(p, x, out, _mm256_setzero_si256(), dot_i16, widen)
    }

    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn q4_1_vnni(p: *const u8, x: &[Q8Block], out: &mut [f32; GROUP]) {
        q4_1_kernel!(p, x, out, _mm256_setzero_si256(), dot_vnni, same)
    }

    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn q8_0_vnni(p: *const u8, x: &[Q8Block], out: &mut [f32; GROUP]) {
        q8_0_kernel!(p, x, out, _mm256_setzero_si256(), dot_vnni, same)
    }
}

/// Part of one matrix's output owned by one team member: (matrix, first group, outputs).
type Share<'a> = Vec<(&'a QMatrix, usize, &'a mut [f32])>;

/// Splits the row groups of all `mats` (taken end to end) into `n` contiguous, nearly
/// equal parts.
fn split_groups<'a>(mats: &[&'a QMatrix], outs: &'a mut [&mut [f32]], n: usize) -> Vec<Share<'a>> {
    let total: usize = mats.iter().map(|m| m.rows.div_ceil(GROUP)).sum();
    let bounds: Vec<usize> = (0..=n).map(|w| w * total / n).collect();
    let mut shares: Vec<Share<'a>> = (0..n).map(|_| Vec::new()).collect();
    let mut offset = 0;
    for (m, out) in mats.iter().zip(outs.iter_mut()) {
        let groups = m.rows.div_ceil(GROUP);
        let mut rest: &mut [f32] = &mut out[..m.rows];
        let mut g = 0;
        while g < groups {
            // The member whose range holds this group, and where that range ends.
            let w = bounds.partition_point(|&b| b <= offset + g) - 1;
            let end = (bounds[w + 1] - offset).min(groups);
            let take = ((end - g) * GROUP).min(rest.len());
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
            shares[w].push((*m, g, head));
            rest = tail;
            g = end;
        }
        offset += groups;
    }
    shares
}

/// `outs[i] = mats[i] · x` for matrices sharing one input (q/k/v, gate/up), in one
/// parallel pass so that the team is started once.
pub fn matvec_many(mats: &[&QMatrix], x: &[f32], outs: &mut [&mut [f32]]) {
    let mut qx = Vec::with_capacity(x.len() / BLOCK);
    quantize_input(x, &mut qx);
    let kernel = group_fn();
    let team = Team::global();
    let shares: Vec<Mutex<Share>> = split_groups(mats, outs, team.size())
        .into_iter()
        .map(Mutex::new)
        .collect();
    team.run(&|member, _| {
        let mut share = shares[member]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (m, first, out) in share.iter_mut() {
            for (i, rows) in out.chunks_mut(GROUP).enumerate() {
                let mut lanes = [0f32; GROUP];
                kernel(m.kind, m.group(*first + i), &qx, &mut lanes);
                rows.copy_from_slice(&lanes[..rows.len()]);
            }
        }
    });
}

/// `out = m · x` for a single matrix.
pub fn matvec(m: &QMatrix, x: &[f32], out: &mut [f32]) {
    matvec_many(&[m], x, &mut [out]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// Random GGML bytes (row-major blocks) for a rows x cols matrix.
    fn random_ggml(kind: QKind, rows: usize, cols: usize) -> Vec<u8> {
        let mut seed = 7u64;
        let mut data = vec![0u8; rows * cols / BLOCK * kind.block_bytes()];
        for blk in data.chunks_exact_mut(kind.block_bytes()) {
            for b in blk.iter_mut() {
                *b = lcg(&mut seed) as u8;
            }
            let d = half::f16::from_f32(0.01 + (lcg(&mut seed) % 100) as f32 * 1e-4);
            blk[..2].copy_from_slice(&d.to_le_bytes());
            if kind == QKind::Q4_1 {
                let m = half::f16::from_f32(-0.05);
                blk[2..4].copy_from_slice(&m.to_le_bytes());
            }
        }
        data
    }

    /// Dequantizes one GGML row straight from the file layout (the reference).
    fn ggml_row(kind: QKind, ggml: &[u8], cols: usize, r: usize) -> Vec<f32> {
        let bb = kind.block_bytes();
        let row = &ggml[r * cols / BLOCK * bb..(r + 1) * cols / BLOCK * bb];
        let mut out = Vec::with_capacity(cols);
        for blk in row.chunks_exact(bb) {
            let d = f16_at(blk, 0);
            match kind {
                QKind::Q4_1 => {
                    let m = f16_at(blk, 2);
                    let lo = blk[4..20].iter().map(|q| d * f32::from(q & 0x0F) + m);
                    let hi = blk[4..20].iter().map(|q| d * f32::from(q >> 4) + m);
                    out.extend(lo.chain(hi));
                }
                QKind::Q8_0 => out.extend(blk[2..34].iter().map(|&q| d * f32::from(q as i8))),
            }
        }
        out
    }

    fn check(kind: QKind) {
        // 37 rows: the last group is padded.
        let (rows, cols) = (37, 96);
        let ggml = random_ggml(kind, rows, cols);
        let m = QMatrix::new(kind, rows, cols, ggml.clone()).expect("consistent test matrix");
        let mut seed = 3u64;
        let x: Vec<f32> = (0..cols)
            .map(|_| (lcg(&mut seed) % 2000) as f32 / 1000.0 - 1.0)
            .collect();
        let mut out = vec![0f32; rows];
        matvec(&m, &x, &mut out);
        let mut qx = Vec::new();
        quantize_input(&x, &mut qx);
        let mut row = vec![0f32; cols];
        for (r, got) in out.iter().enumerate() {
            m.dequantize_row(r, &mut row);
            assert_eq!(
                row,
                ggml_row(kind, &ggml, cols, r),
                "row {r} repacked wrongly"
            );
            let mut lanes = [0f32; GROUP];
            group_scalar(kind, m.group(r / GROUP), &qx, &mut lanes);
            let scalar = lanes[r % GROUP];
            assert!((got - scalar).abs() < 1e-4, "simd {got} vs scalar {scalar}");
            let exact: f32 = row.iter().zip(&x).map(|(a, b)| a * b).sum();
            // Quantizing x moves each value by at most half a step (|x| <= 1: 1/254).
            let bound: f32 = row.iter().map(|w| w.abs()).sum::<f32>() / 254.0 + 1e-4;
            assert!((got - exact).abs() <= bound, "{got} vs exact {exact}");
        }
    }

    #[test]
    fn q4_1_matches_dequantized() {
        check(QKind::Q4_1);
    }

    #[test]
    fn q8_0_matches_dequantized() {
        check(QKind::Q8_0);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_simd_level_matches_scalar() {
        for kind in [QKind::Q4_1, QKind::Q8_0] {
            let (rows, cols) = (16, 256);
            let m = QMatrix::new(kind, rows, cols, random_ggml(kind, rows, cols))
                .expect("consistent test matrix");
            let x: Vec<f32> = (0..cols)
                .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
                .collect();
            let mut qx = Vec::new();
            quantize_input(&x, &mut qx);
            let mut want = [0f32; GROUP];
            group_scalar(kind, m.group(1), &qx, &mut want);
            let mut kernels: Vec<GroupFn> = Vec::new();
            if x86::level() != x86::Level::None {
                kernels.push(x86::group_avx2);
            }
            if x86::level() == x86::Level::AvxVnni {
                kernels.push(x86::group_vnni);
            }
            for kernel in kernels {
                let mut got = [0f32; GROUP];
                kernel(kind, m.group(1), &qx, &mut got);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-3, "{kind:?}: {g} vs {w}");
                }
            }
        }
    }
}

//! libhct's `vec_dot` against the real ggml's, single thread, on weight matrices the size of
//! real models' (ggml's `ne0 × ne1` = row length × rows): 576×1536 (SmolLM2-135M's FFN),
//! 4096×4096 and 4096×14336 (Llama-3-8B's attention and FFN).
//!
//! For each size: random weights (roughly normal, rare outliers) quantized by ggml's own
//! `ggml_quantize_chunk` into Q4_0 and Q4_1, and encoded into int4_opt_v1's layout (the g16
//! layout, 12 bytes per 16 weights; built here by min/max rounding, as the kernel's speed does
//! not depend on the values); one activation row quantized by ggml's CPU quantizer into the
//! `vec_dot_type` each kernel takes. A timed run is one full matrix-vector product: `vec_dot`
//! called once per row through the function pointer a ggml runtime would call (libhct's
//! dispatched `extern "C"` entry point; ggml's `type_traits_cpu[type].vec_dot`). Each run is
//! repeated, interleaved with the others so machine load hits all alike, and the best is kept.
//! The ceiling is `memcpy` of the same weight bytes (which also writes them: the bandwidth a
//! pure stream of the weights cannot beat by much).
//!
//! Pairs: Q4_0 and Q4_1 against ggml on the same bytes; int4_g32_fp16_v1 (Q4_1's bytes, Q8_0
//! activations) against ggml's Q4_1; int4_opt_v1 against ggml's Q4_1 of the same weights
//! (different byte counts: the table gives both the bytes/s ratio and the matvec-time ratio).
//!
//! ggml is loaded with dlopen from `$HCT_GGML_LIB_DIR` (or `$HCT_GGML_LIB`, as `peers.sh env`
//! prints it); without it the benchmark says SKIPPED and exits 0.
//!
//! A last table times the multi-row entry ([`hct::gemm`]) on a product with 16 activation rows
//! against per-pair `vec_dot` loops, HCT's and ggml's (`--gemm-only` runs just that table).
//!
//! A per-call table (`--per-call` runs just that table) times single `vec_dot` calls on one
//! cache-resident row of 576, 2048 and 4096 elements: HCT's Q4_0/Q4_1/Q8_0-layout kernels
//! against ggml's on the same bytes, and `nl4_sh64_v1` (SPEC.md §7.7) against ggml's IQ4_NL,
//! IQ4_XS and Q4_K on the same weights, `nl5_sh64_v1` beside Q5_0 and Q5_K, `nl6_sh64_v1`
//! beside Q6_K and Q8_0 (the K-quants need rows that are whole 256-blocks, so they have no
//! 576 row).
//!
//! `cargo bench -p hct-kernels --bench vec_dot_vs_ggml [-- --trials N] [--gemm-only] [--per-call]`

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hct::fp16::f32_to_f16_bits;
use hct::platform::{active, Backend};
use hct::traits::{traits_for, CodecTraits};
use hct::WeightFormat;

/// (row length, rows): ggml's ne0 × ne1.
const SHAPES: [(usize, usize); 3] = [(576, 1536), (4096, 4096), (4096, 14336)];

fn main() {
    let mut trials = 15usize;
    let mut gemm_only = false;
    let mut per_call_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--trials" {
            trials = args.next().and_then(|v| v.parse().ok()).unwrap_or(trials);
        } else if a == "--gemm-only" {
            gemm_only = true;
        } else if a == "--per-call" {
            per_call_only = true;
        }
    }
    let Some(ggml) = Ggml::load() else {
        return;
    };
    if per_call_only {
        println!(
            "cpu: {}; load average before: {}",
            cpu_model(),
            load_average()
        );
        per_call_section(&ggml, trials);
        println!("load average after: {}", load_average());
        return;
    }
    if gemm_only {
        println!(
            "cpu: {}; load average before: {}",
            cpu_model(),
            load_average()
        );
        gemm_section(&ggml, trials);
        println!("load average after: {}", load_average());
        return;
    }
    println!(
        "libhct vec_dot ({}) vs ggml {} vec_dot, single thread, best of {trials}",
        active().isa().name(),
        ggml.version()
    );
    println!(
        "cpu: {}; load average before: {}",
        cpu_model(),
        load_average()
    );
    println!();
    println!(
        "| matrix (ne0×ne1) | layout | weight MB | HCT GB/s | ggml GB/s | memcpy GB/s | \
         HCT/ggml bytes/s | HCT/ggml matvec speed | HCT/memcpy | ggml/memcpy | HCT Rust API GB/s | \
         HCT scalar GB/s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");

    let mut per_call = Vec::new();
    for (row_len, rows) in SHAPES {
        let bench = Bench::new(&ggml, row_len, rows);
        for case in bench.cases() {
            let r = bench.measure(&case, trials);
            if row_len != SHAPES[2].0 || rows != SHAPES[2].1 {
                per_call.push((row_len, case.hct.codec_id, r.per_call));
            }
            let mb = |b: usize| b as f64 / 1e6;
            let gbs = |bytes: usize, t: Duration| bytes as f64 / t.as_secs_f64() / 1e9;
            let hct = gbs(case.hct_bytes.len(), r.hct);
            let ggml_rate = gbs(case.ggml_bytes.len(), r.ggml);
            let memcpy = gbs(case.hct_bytes.len(), r.memcpy_hct);
            let memcpy_ggml = gbs(case.ggml_bytes.len(), r.memcpy_ggml);
            println!(
                "| {row_len}×{rows} | {} vs ggml {} | {:.1} vs {:.1} | {hct:.2} | {ggml_rate:.2} | {memcpy:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                case.hct.codec_id,
                case.ggml_name,
                mb(case.hct_bytes.len()),
                mb(case.ggml_bytes.len()),
                hct / ggml_rate,
                r.ggml.as_secs_f64() / r.hct.as_secs_f64(),
                hct / memcpy,
                ggml_rate / memcpy_ggml,
                gbs(case.hct_bytes.len(), r.rust_api),
                gbs(case.hct_bytes.len(), r.scalar),
            );
        }
    }
    println!();
    println!("Per call, one cache-resident row (weight row 0 and the activation row, repeated):");
    println!();
    println!("| row length | layout | HCT C entry ns | HCT Rust API ns | ggml ns |");
    println!("|---:|---|---:|---:|---:|");
    for (row_len, codec, [c_entry, rust_api, ggml_call]) in per_call {
        println!("| {row_len} | {codec} | {c_entry:.1} | {rust_api:.1} | {ggml_call:.1} |");
    }
    gemm_section(&ggml, trials);
    per_call_section(&ggml, trials);
    println!();
    println!("load average after: {}", load_average());
    println!(
        "GB/s = weight bytes read per second (10^9). \"matvec speed\" = ggml time / HCT time for"
    );
    println!(
        "the whole matrix (differs from the bytes/s ratio only when the layouts' sizes differ)."
    );
    println!(
        "\"HCT Rust API\": the same kernels through Backend::vec_dot on row slices, without the C"
    );
    println!(
        "entry point's pointer checks and dispatch (the HCT column): the gap is the C call's cost."
    );
    println!(
        "memcpy GB/s counts the bytes copied: it reads and writes each, twice the traffic of a"
    );
    println!(
        "vec_dot. Matrices of 0.5-0.7 MB fit a typical L2, 9-13 MB a typical L3, 33-44 MB neither."
    );
}

/// One HCT layout and the ggml layout it is compared with, on the same f32 weights.
struct Case {
    hct: &'static CodecTraits,
    hct_bytes: Vec<u8>,
    hct_act: Vec<u8>,
    ggml_name: &'static str,
    ggml_vec_dot: VecDot,
    ggml_act_type: c_int,
    ggml_bytes: Vec<u8>,
    ggml_act: Vec<u8>,
}

struct Timings {
    hct: Duration,
    ggml: Duration,
    memcpy_hct: Duration,
    memcpy_ggml: Duration,
    rust_api: Duration,
    scalar: Duration,
    /// ns per call on one cache-resident row: C entry, Rust API, ggml.
    per_call: [f64; 3],
}

struct Bench<'g> {
    ggml: &'g Ggml,
    row_len: usize,
    rows: usize,
    weights: Vec<f32>,
    activation: Vec<f32>,
}

impl<'g> Bench<'g> {
    fn new(ggml: &'g Ggml, row_len: usize, rows: usize) -> Bench<'g> {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ (row_len * rows) as u64);
        let weights = (0..row_len * rows).map(|_| rng.weight_like()).collect();
        let activation = (0..row_len).map(|_| rng.uniform()).collect();
        Bench {
            ggml,
            row_len,
            rows,
            weights,
            activation,
        }
    }

    fn cases(&self) -> Vec<Case> {
        let q4_0 = self
            .ggml
            .quantize(GGML_TYPE_Q4_0, &self.weights, self.rows, self.row_len);
        let q4_1 = self
            .ggml
            .quantize(GGML_TYPE_Q4_1, &self.weights, self.rows, self.row_len);
        let g16 = encode_int4_g16_min_max(&self.weights);
        let act = |t: c_int| self.ggml.quantize_activation(t, &self.activation);
        let (q8_0, q8_1) = (act(GGML_TYPE_Q8_0), act(GGML_TYPE_Q8_1));
        let traits = |id: &str| traits_for(id).expect("libhct has this codec");
        let case =
            |hct: &'static CodecTraits, hct_bytes: &Vec<u8>, hct_act: &Vec<u8>, ggml_type| {
                let ggml_act = match ggml_type {
                    GGML_TYPE_Q4_0 => q8_0.clone(),
                    _ => q8_1.clone(),
                };
                Case {
                    hct,
                    hct_bytes: hct_bytes.clone(),
                    hct_act: hct_act.clone(),
                    ggml_name: if ggml_type == GGML_TYPE_Q4_0 {
                        "q4_0"
                    } else {
                        "q4_1"
                    },
                    ggml_vec_dot: self.ggml.vec_dot(ggml_type),
                    ggml_act_type: self.ggml.traits(ggml_type).vec_dot_type,
                    ggml_bytes: if ggml_type == GGML_TYPE_Q4_0 {
                        q4_0.clone()
                    } else {
                        q4_1.clone()
                    },
                    ggml_act,
                }
            };
        vec![
            case(traits("ggml_q4_0"), &q4_0, &q8_0, GGML_TYPE_Q4_0),
            case(traits("ggml_q4_1"), &q4_1, &q8_1, GGML_TYPE_Q4_1),
            case(traits("int4_g32_fp16_v1"), &q4_1, &q8_0, GGML_TYPE_Q4_1),
            case(traits("int4_opt_v1"), &g16, &q8_0, GGML_TYPE_Q4_1),
        ]
    }

    fn measure(&self, case: &Case, trials: usize) -> Timings {
        let n = self.row_len;
        let hct_row = case.hct_bytes.len() / self.rows;
        let ggml_row = case.ggml_bytes.len() / self.rows;
        let mut out_hct = vec![0f32; self.rows];
        let mut out_ggml = vec![0f32; self.rows];
        let mut out_scalar = vec![0f32; self.rows];
        let mut out_rust = vec![0f32; self.rows];
        let mut copy = vec![0u8; case.hct_bytes.len().max(case.ggml_bytes.len())];
        // Small matrices run several times per timed sample, so a sample is long enough to time.
        let reps = (8_000_000 / case.hct_bytes.len()).max(1);

        let hct_matvec = |out: &mut [f32]| {
            for (r, s) in out.iter_mut().enumerate() {
                let x = case.hct_bytes[r * hct_row..].as_ptr();
                // SAFETY: row r of the matrix and the activation row, both of n elements; the
                // traits' contract (nrc = 1, strides ignored).
                unsafe {
                    (case.hct.vec_dot)(
                        n as c_int,
                        s,
                        0,
                        x.cast(),
                        0,
                        case.hct_act.as_ptr().cast(),
                        0,
                        1,
                    )
                };
            }
        };
        let ggml_matvec = |out: &mut [f32]| {
            for (r, s) in out.iter_mut().enumerate() {
                let x = case.ggml_bytes[r * ggml_row..].as_ptr();
                // SAFETY: as above, ggml's contract for its own type.
                unsafe {
                    (case.ggml_vec_dot)(
                        n as c_int,
                        s,
                        0,
                        x.cast(),
                        0,
                        case.ggml_act.as_ptr().cast(),
                        0,
                        1,
                    )
                };
            }
        };
        let backend = active();
        let rust_matvec = |out: &mut [f32]| {
            for (r, s) in out.iter_mut().enumerate() {
                let x = &case.hct_bytes[r * hct_row..(r + 1) * hct_row];
                *s = backend
                    .vec_dot(case.hct.format, n, x, &case.hct_act)
                    .unwrap();
            }
        };
        let scalar = Backend::scalar();
        let scalar_matvec = |out: &mut [f32]| {
            for (r, s) in out.iter_mut().enumerate() {
                let x = &case.hct_bytes[r * hct_row..(r + 1) * hct_row];
                *s = scalar
                    .vec_dot(case.hct.format, n, x, &case.hct_act)
                    .unwrap();
            }
        };

        // Warm up, and check that both compute the same product (a benchmark of wrong
        // answers would be worthless): within 1% of the output's norm, since the two layouts
        // and activation formats may differ.
        hct_matvec(&mut out_hct);
        ggml_matvec(&mut out_ggml);
        scalar_matvec(&mut out_scalar);
        rust_matvec(&mut out_rust);
        assert_eq!(bits(&out_hct), bits(&out_rust), "{}", case.hct.codec_id);
        assert_eq!(
            bits(&out_hct),
            bits(&out_scalar),
            "{}: dispatched and scalar vec_dot differ",
            case.hct.codec_id
        );
        let norm = out_ggml
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let diff = out_hct
            .iter()
            .zip(&out_ggml)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        // Same bytes and activations: rounding only. int4_g32 reads Q8_0 where ggml's Q4_1
        // reads Q8_1 and its fp16-rounded block sums (up to ~1e-3 of the norm was seen).
        // int4_opt_v1 is another quantization of the weights altogether.
        let tolerance = match (case.hct.format, case.hct.format.activation()) {
            (WeightFormat::Int4G16, _) => 0.2,
            (_, act) if act.ggml_type_id() as c_int != case.ggml_act_type => 1e-2,
            _ => 1e-4,
        };
        assert!(
            diff <= tolerance * norm,
            "{}: HCT and ggml products differ by {diff} (norm {norm})",
            case.hct.codec_id
        );

        let time = |f: &mut dyn FnMut()| {
            let start = Instant::now();
            for _ in 0..reps {
                f();
            }
            start.elapsed() / reps as u32
        };
        let mut best = Timings {
            hct: Duration::MAX,
            ggml: Duration::MAX,
            memcpy_hct: Duration::MAX,
            memcpy_ggml: Duration::MAX,
            rust_api: Duration::MAX,
            scalar: Duration::MAX,
            per_call: [f64::MAX; 3],
        };
        // Calls on one row that stays in L1: what each call costs beyond streaming the
        // weights, the C entry point's checks and dispatch included.
        let calls = 20_000usize;
        let ns_per_call = |f: &mut dyn FnMut()| {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            start.elapsed().as_secs_f64() * 1e9 / calls as f64
        };
        let (x0, g0) = (&case.hct_bytes[..hct_row], &case.ggml_bytes[..ggml_row]);
        let mut sinks = [0f32; 3];
        for trial in 0..trials {
            best.hct = best
                .hct
                .min(time(&mut || hct_matvec(black_box(&mut out_hct))));
            best.ggml = best
                .ggml
                .min(time(&mut || ggml_matvec(black_box(&mut out_ggml))));
            let bytes = &case.hct_bytes;
            best.memcpy_hct = best.memcpy_hct.min(time(&mut || {
                copy[..bytes.len()].copy_from_slice(black_box(bytes));
                black_box(&copy);
            }));
            let bytes = &case.ggml_bytes;
            best.memcpy_ggml = best.memcpy_ggml.min(time(&mut || {
                copy[..bytes.len()].copy_from_slice(black_box(bytes));
                black_box(&copy);
            }));
            best.rust_api = best
                .rust_api
                .min(time(&mut || rust_matvec(black_box(&mut out_rust))));
            let [c_sink, rust_sink, ggml_sink] = &mut sinks;
            let one_call: [&mut dyn FnMut(); 3] = [
                // SAFETY (C entry, ggml): one row of n elements and the activation row; the
                // traits' contract (nrc = 1, strides ignored).
                &mut || unsafe {
                    (case.hct.vec_dot)(
                        n as c_int,
                        c_sink,
                        0,
                        black_box(x0.as_ptr()).cast(),
                        0,
                        case.hct_act.as_ptr().cast(),
                        0,
                        1,
                    )
                },
                &mut || {
                    *rust_sink = backend
                        .vec_dot(case.hct.format, n, black_box(x0), &case.hct_act)
                        .unwrap()
                },
                &mut || unsafe {
                    (case.ggml_vec_dot)(
                        n as c_int,
                        ggml_sink,
                        0,
                        black_box(g0.as_ptr()).cast(),
                        0,
                        case.ggml_act.as_ptr().cast(),
                        0,
                        1,
                    )
                },
            ];
            for (best, call) in best.per_call.iter_mut().zip(one_call) {
                *best = best.min(ns_per_call(call));
            }
            black_box(&sinks);
            // The scalar reference is only context; a third of the samples is enough.
            if trial % 3 == 0 {
                best.scalar = best
                    .scalar
                    .min(time(&mut || scalar_matvec(black_box(&mut out_scalar))));
            }
        }
        best
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// The int4_g16 layout (fp16 d, fp16 m, 8 bytes of nibbles: element j low nibble of byte j,
/// element j + 8 high nibble) by min/max rounding: d = (max − min) / 15, m = min.
fn encode_int4_g16_min_max(weights: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(weights.len() / 16 * 12);
    for group in weights.chunks_exact(16) {
        let (lo, hi) = group
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let d = (hi - lo) / 15.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        out.extend(f32_to_f16_bits(d).to_le_bytes());
        out.extend(f32_to_f16_bits(lo).to_le_bytes());
        let q = |v: f32| ((v - lo) * id).round().clamp(0.0, 15.0) as u8;
        for j in 0..8 {
            out.push(q(group[j]) | (q(group[j + 8]) << 4));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The real ggml, through dlopen.

const GGML_TYPE_Q4_0: c_int = 2;
const GGML_TYPE_Q4_1: c_int = 3;
const GGML_TYPE_Q8_0: c_int = 8;
const GGML_TYPE_Q8_1: c_int = 9;
const GGML_TYPE_Q4_K: c_int = 12;
const GGML_TYPE_Q5_0: c_int = 6;
const GGML_TYPE_Q5_K: c_int = 13;
const GGML_TYPE_Q6_K: c_int = 14;
const GGML_TYPE_IQ4_NL: c_int = 20;
const GGML_TYPE_IQ4_XS: c_int = 23;

type VecDot =
    unsafe extern "C" fn(c_int, *mut f32, usize, *const c_void, usize, *const c_void, usize, c_int);
type FromFloat = unsafe extern "C" fn(*const f32, *mut c_void, i64);

/// ggml-cpu.h's `struct ggml_type_traits_cpu`.
#[repr(C)]
struct TypeTraitsCpu {
    from_float: Option<FromFloat>,
    vec_dot: Option<VecDot>,
    vec_dot_type: c_int,
    nrows: i64,
}

struct Ggml {
    get_type_traits_cpu: unsafe extern "C" fn(c_int) -> *const TypeTraitsCpu,
    quantize_chunk:
        unsafe extern "C" fn(c_int, *const f32, *mut c_void, i64, i64, i64, *const f32) -> usize,
    row_size: unsafe extern "C" fn(c_int, i64) -> usize,
    version: unsafe extern "C" fn() -> *const c_char,
}

impl Ggml {
    fn load() -> Option<Ggml> {
        let dir = std::env::var_os("HCT_GGML_LIB_DIR")
            .or_else(|| std::env::var_os("HCT_GGML_LIB"))
            .map(PathBuf::from);
        let Some(dir) = dir.filter(|d| d.join("libggml-cpu.so").exists()) else {
            println!(
                "vec_dot_vs_ggml: SKIPPED: set HCT_GGML_LIB_DIR to the directory of libggml-base.so \
                 and libggml-cpu.so (eval \"$(compat-tests/peers.sh env)\" sets HCT_GGML_LIB)"
            );
            return None;
        };
        let base = dlopen(&dir.join("libggml-base.so"));
        let cpu = dlopen(&dir.join("libggml-cpu.so"));
        // SAFETY: each type is the C signature ggml.h / ggml-cpu.h declare for the symbol.
        unsafe {
            let init: unsafe extern "C" fn() = symbol(cpu, "ggml_cpu_init");
            init();
            Some(Ggml {
                get_type_traits_cpu: symbol(cpu, "ggml_get_type_traits_cpu"),
                quantize_chunk: symbol(base, "ggml_quantize_chunk"),
                row_size: symbol(base, "ggml_row_size"),
                version: symbol(base, "ggml_version"),
            })
        }
    }

    fn version(&self) -> String {
        // SAFETY: ggml_version returns a static C string.
        unsafe { CStr::from_ptr((self.version)()) }
            .to_string_lossy()
            .into_owned()
    }

    fn traits(&self, ty: c_int) -> &TypeTraitsCpu {
        // SAFETY: ggml returns a pointer into its static table for every type id.
        unsafe { &*(self.get_type_traits_cpu)(ty) }
    }

    fn vec_dot(&self, ty: c_int) -> VecDot {
        self.traits(ty)
            .vec_dot
            .expect("ggml has a vec_dot for this type")
    }

    fn quantize(&self, ty: c_int, weights: &[f32], rows: usize, row_len: usize) -> Vec<u8> {
        // SAFETY: ggml_row_size only computes.
        let row_bytes = unsafe { (self.row_size)(ty, row_len as i64) };
        let mut out = vec![0u8; row_bytes * rows];
        // SAFETY: weights holds rows × row_len floats and out the quantized rows; no imatrix.
        let written = unsafe {
            (self.quantize_chunk)(
                ty,
                weights.as_ptr(),
                out.as_mut_ptr().cast(),
                0,
                rows as i64,
                row_len as i64,
                std::ptr::null(),
            )
        };
        assert_eq!(written, out.len());
        out
    }

    fn quantize_activation(&self, ty: c_int, x: &[f32]) -> Vec<u8> {
        // SAFETY: ggml_row_size only computes.
        let bytes = unsafe { (self.row_size)(ty, x.len() as i64) };
        let mut out = vec![0u8; bytes];
        let from_float = self
            .traits(ty)
            .from_float
            .expect("ggml quantizes activations");
        // SAFETY: x.len() floats in, one row of `ty` out.
        unsafe { from_float(x.as_ptr(), out.as_mut_ptr().cast(), x.len() as i64) };
        out
    }
}

fn dlopen(path: &Path) -> *mut c_void {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; RTLD_GLOBAL so libggml-cpu finds libggml-base's symbols.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    assert!(
        !handle.is_null(),
        "dlopen {}: {}",
        path.display(),
        dlerror()
    );
    handle
}

/// # Safety
/// `T` must be the function-pointer type of the symbol's C declaration.
unsafe fn symbol<T>(handle: *mut c_void, name: &str) -> T {
    let address = dlsym(handle, name);
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of_val(&address));
    // SAFETY: a non-NULL code address, read as the (caller-asserted) function type.
    unsafe { std::mem::transmute_copy::<*mut c_void, T>(&address) }
}

fn dlsym(handle: *mut c_void, name: &str) -> *mut c_void {
    let c = CString::new(name).unwrap();
    // SAFETY: a handle from dlopen and a NUL-terminated name.
    let sym = unsafe { libc::dlsym(handle, c.as_ptr()) };
    assert!(!sym.is_null(), "dlsym {name}: {}", dlerror());
    sym
}

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a C string valid until the next dl* call.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        String::new()
    } else {
        // SAFETY: non-NULL, NUL-terminated.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

// ---------------------------------------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }

    fn weight_like(&mut self) -> f32 {
        let v = (self.uniform() + self.uniform() + self.uniform() + self.uniform()) * 0.5;
        if self.next().is_multiple_of(997) {
            v * 12.0
        } else {
            v
        }
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Activation rows per product in the multi-row section: a prompt batch as ggml's mul_mat
/// tiles it (16 weight rows × 16 activation rows per chunk).
const BATCH: usize = 16;
const TILE: usize = 16;

/// The multi-row entry ([`hct::gemm`]) against per-pair `vec_dot` loops, HCT's and ggml's, on
/// a product of a whole matrix with `BATCH` activation rows, computed in ggml's 16×16 chunks
/// (one multi-row call per chunk; one `vec_dot` call per pair otherwise). ggml has no
/// multi-row (repacked) kernel for Q4_1's bytes, so its per-pair loop is what stock
/// llama.cpp runs for a Q4_1 prompt; int4_g32_fp16_v1 has Q4_1's bytes.
fn gemm_section(ggml: &Ggml, trials: usize) {
    println!();
    println!(
        "Multi-row: weights × {BATCH} activation rows in {TILE}×{TILE} chunks, single thread, best of {}; \
         GB/s = weight bytes / time of the whole product ({BATCH} dot products per weight row)",
        3 * trials
    );
    println!();
    println!(
        "| matrix | layout | HCT gemm GB/s | HCT vec_dot per pair GB/s | ggml vec_dot per pair GB/s | \
         gemm / HCT per pair | gemm / ggml per pair (time) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (row_len, rows) in [(576usize, 1536usize), (2048, 2048), (4096, 4096)] {
        let bench = Bench::new(ggml, row_len, rows);
        let mut rng = XorShift(0x51ce ^ row_len as u64);
        let batch: Vec<Vec<f32>> = (0..BATCH)
            .map(|_| (0..row_len).map(|_| rng.uniform()).collect())
            .collect();
        let act = |t: c_int| -> (Vec<u8>, usize) {
            let rows: Vec<Vec<u8>> = batch
                .iter()
                .map(|x| ggml.quantize_activation(t, x))
                .collect();
            let stride = rows[0].len();
            (rows.concat(), stride)
        };
        let (q8_0, q8_0_row) = act(GGML_TYPE_Q8_0);
        let (q8_1, q8_1_row) = act(GGML_TYPE_Q8_1);
        for case in bench.cases() {
            let n = row_len;
            let hct_row = case.hct_bytes.len() / rows;
            let ggml_row = case.ggml_bytes.len() / rows;
            let (hct_act, hct_act_row) = match case.hct.format.activation().ggml_type_id() as c_int
            {
                GGML_TYPE_Q8_0 => (&q8_0, q8_0_row),
                _ => (&q8_1, q8_1_row),
            };
            let (ggml_act, ggml_act_row) = if case.ggml_act_type == GGML_TYPE_Q8_0 {
                (&q8_0, q8_0_row)
            } else {
                (&q8_1, q8_1_row)
            };
            let mut out_gemm = vec![0f32; rows * BATCH];
            let mut out_pairs = vec![0f32; rows * BATCH];
            let mut out_ggml = vec![0f32; rows * BATCH];
            let chunks = |f: &mut dyn FnMut(usize, usize, usize, usize)| {
                for j0 in (0..BATCH).step_by(TILE) {
                    for i0 in (0..rows).step_by(TILE) {
                        f(i0, (i0 + TILE).min(rows), j0, (j0 + TILE).min(BATCH));
                    }
                }
            };
            let run_gemm = |out: &mut [f32]| {
                chunks(&mut |i0, i1, j0, j1| {
                    // SAFETY: rows i0..i1 of the matrix, activation rows j0..j1, outputs
                    // j·rows + i inside `out`.
                    unsafe {
                        (case.hct.gemm)(
                            n as c_int,
                            out.as_mut_ptr().add(j0 * rows + i0),
                            rows * 4,
                            case.hct_bytes.as_ptr().add(i0 * hct_row).cast(),
                            hct_row,
                            hct_act.as_ptr().add(j0 * hct_act_row).cast(),
                            hct_act_row,
                            (i1 - i0) as i64,
                            (j1 - j0) as i64,
                        )
                    }
                })
            };
            let per_pair = |out: &mut [f32],
                            vec_dot: VecDot,
                            w: &[u8],
                            w_row: usize,
                            a: &[u8],
                            a_row: usize| {
                chunks(&mut |i0, i1, j0, j1| {
                    for j in j0..j1 {
                        for i in i0..i1 {
                            // SAFETY: row i and activation row j of n elements; nrc = 1.
                            unsafe {
                                vec_dot(
                                    n as c_int,
                                    &mut out[j * rows + i],
                                    0,
                                    w.as_ptr().add(i * w_row).cast(),
                                    0,
                                    a.as_ptr().add(j * a_row).cast(),
                                    0,
                                    1,
                                )
                            };
                        }
                    }
                })
            };
            run_gemm(&mut out_gemm);
            per_pair(
                &mut out_pairs,
                case.hct.vec_dot,
                &case.hct_bytes,
                hct_row,
                hct_act,
                hct_act_row,
            );
            assert_eq!(
                bits(&out_gemm),
                bits(&out_pairs),
                "{}: gemm and vec_dot differ",
                case.hct.codec_id
            );
            // Short samples, many of them: on a shared machine the best of many short samples
            // finds the unloaded moments.
            let reps = (1_000_000 / case.hct_bytes.len()).max(1);
            let time = |f: &mut dyn FnMut()| {
                let start = Instant::now();
                for _ in 0..reps {
                    f();
                }
                start.elapsed() / reps as u32
            };
            let mut best = [Duration::MAX; 3];
            for _ in 0..3 * trials {
                best[0] = best[0].min(time(&mut || run_gemm(black_box(&mut out_gemm))));
                best[1] = best[1].min(time(&mut || {
                    per_pair(
                        black_box(&mut out_pairs),
                        case.hct.vec_dot,
                        &case.hct_bytes,
                        hct_row,
                        hct_act,
                        hct_act_row,
                    )
                }));
                best[2] = best[2].min(time(&mut || {
                    per_pair(
                        black_box(&mut out_ggml),
                        case.ggml_vec_dot,
                        &case.ggml_bytes,
                        ggml_row,
                        ggml_act,
                        ggml_act_row,
                    )
                }));
            }
            let gbs = |bytes: usize, t: Duration| bytes as f64 / t.as_secs_f64() / 1e9;
            println!(
                "| {row_len}×{rows} | {} vs ggml {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                case.hct.codec_id,
                case.ggml_name,
                gbs(case.hct_bytes.len(), best[0]),
                gbs(case.hct_bytes.len(), best[1]),
                gbs(case.ggml_bytes.len(), best[2]),
                best[1].as_secs_f64() / best[0].as_secs_f64(),
                best[2].as_secs_f64() / best[0].as_secs_f64(),
            );
        }
    }
}

/// One `vec_dot` under test in the per-call table: its function pointer (the one a ggml
/// runtime calls), one weight row and the activation row it consumes.
struct OneRow {
    name: String,
    vec_dot: VecDot,
    row: Vec<u8>,
    act: Vec<u8>,
}

impl OneRow {
    /// One call; the result goes to `sink`.
    fn call(&self, n: usize, sink: &mut f32) {
        // SAFETY: `row` is one weight row of n elements of this function's type and `act` one
        // activation row of its vec_dot type; nrc = 1, strides ignored (both contracts).
        unsafe {
            (self.vec_dot)(
                n as c_int,
                sink,
                0,
                black_box(self.row.as_ptr()).cast(),
                0,
                self.act.as_ptr().cast(),
                0,
                1,
            )
        }
    }
}

/// Per-call cost of single-row `vec_dot`, HCT beside ggml on the same weights: Q4_0, Q4_1
/// and Q8_0 on the same bytes; `nl4_sh64_v1` beside IQ4_NL, IQ4_XS and Q4_K (other layouts
/// of the same f32 weights, all 4.25–4.56 bits per weight), `nl5_sh64_v1` (5.5) beside Q5_0
/// (5.5) and Q5_K (5.5), `nl6_sh64_v1` (6.5) beside Q6_K (6.56) and Q8_0 (8.5, for the 576
/// row, which Q6_K cannot hold). One cache-resident row, called
/// `calls` times per sample; samples of every contender interleaved; best sample kept.
fn per_call_section(ggml: &Ggml, trials: usize) {
    let trials = 3 * trials;
    println!();
    println!(
        "Per call: one cache-resident row, single thread, best of {trials} interleaved samples; \
         ggml/HCT > 1 means HCT's call is faster"
    );
    println!();
    println!("| row length | HCT layout | HCT ns/call | ggml type | ggml ns/call | ggml/HCT |");
    println!("|---:|---|---:|---|---:|---:|");
    for n in [576usize, 2048, 4096] {
        let mut rng = XorShift(0xca11 ^ n as u64);
        let weights: Vec<f32> = (0..n).map(|_| rng.weight_like()).collect();
        let activation: Vec<f32> = (0..n).map(|_| rng.uniform()).collect();
        let exact: f64 = weights
            .iter()
            .zip(&activation)
            .map(|(&w, &a)| w as f64 * a as f64)
            .sum();
        let norm = weights.iter().map(|&w| (w as f64).abs()).sum::<f64>();
        let ggml_row = |ty: c_int, name: &str| OneRow {
            name: name.to_string(),
            vec_dot: ggml.vec_dot(ty),
            row: ggml.quantize(ty, &weights, 1, n),
            act: ggml.quantize_activation(ggml.traits(ty).vec_dot_type, &activation),
        };
        let hct_row = |id: &str, row: Vec<u8>| {
            let t = traits_for(id).expect("libhct has this codec");
            let act_type = t.format.activation().ggml_type_id() as c_int;
            OneRow {
                name: id.to_string(),
                vec_dot: t.vec_dot,
                row,
                act: ggml.quantize_activation(act_type, &activation),
            }
        };
        // The shifted family's rows, from hct-format's encoder.
        let encoded = |id: &str| {
            let c = hct_format::codec::find(id).expect("hct-format has the shifted family");
            let mut bytes = vec![0u8; c.row_bytes(n as u64).expect("whole super-blocks") as usize];
            c.encode_row(&weights, &mut bytes)
                .expect("a finite row encodes");
            bytes
        };
        let k_quants = n % 256 == 0;
        // (HCT contender, its ggml contenders)
        let mut groups: Vec<(OneRow, Vec<OneRow>)> = Vec::new();
        for (id, ty, name) in [
            ("ggml_q4_0", GGML_TYPE_Q4_0, "q4_0"),
            ("ggml_q4_1", GGML_TYPE_Q4_1, "q4_1"),
            ("ggml_q8_0", GGML_TYPE_Q8_0, "q8_0"),
        ] {
            let theirs = ggml_row(ty, name);
            groups.push((hct_row(id, theirs.row.clone()), vec![theirs]));
        }
        let mut nl4_rivals = vec![ggml_row(GGML_TYPE_IQ4_NL, "iq4_nl")];
        if k_quants {
            nl4_rivals.push(ggml_row(GGML_TYPE_IQ4_XS, "iq4_xs"));
            nl4_rivals.push(ggml_row(GGML_TYPE_Q4_K, "q4_k"));
        }
        groups.push((hct_row("nl4_sh64_v1", encoded("nl4_sh64_v1")), nl4_rivals));
        let mut nl5_rivals = vec![ggml_row(GGML_TYPE_Q5_0, "q5_0")];
        let mut nl6_rivals = vec![ggml_row(GGML_TYPE_Q8_0, "q8_0 (8.5 bpw)")];
        if k_quants {
            nl5_rivals.push(ggml_row(GGML_TYPE_Q5_K, "q5_k"));
            nl6_rivals.insert(0, ggml_row(GGML_TYPE_Q6_K, "q6_k"));
        }
        groups.push((hct_row("nl5_sh64_v1", encoded("nl5_sh64_v1")), nl5_rivals));
        groups.push((hct_row("nl6_sh64_v1", encoded("nl6_sh64_v1")), nl6_rivals));

        // Every contender computes the product it claims to (within its quantization error:
        // 4-bit layouts are off by a few percent of the row's weight mass, never more), and
        // HCT's equals ggml's where they read the same bytes and activations.
        for (ours, theirs) in &groups {
            let mut s_ours = f32::NAN;
            ours.call(n, &mut s_ours);
            for t in theirs.iter().chain(std::iter::once(ours)) {
                let mut s = f32::NAN;
                t.call(n, &mut s);
                assert!(
                    (s as f64 - exact).abs() <= 0.05 * norm,
                    "{} at {n}: {s} against the f32 product {exact}",
                    t.name
                );
            }
            if theirs[0].row == ours.row {
                let mut s = f32::NAN;
                theirs[0].call(n, &mut s);
                assert!(
                    (s - s_ours).abs() <= 1e-4 * s.abs().max(1.0),
                    "{} at {n}: HCT {s_ours}, ggml {s}",
                    ours.name
                );
            }
        }

        let calls = (20_000_000 / n).clamp(2_000, 40_000);
        let mut sink = 0f32;
        let mut time_one = |r: &OneRow| {
            let start = Instant::now();
            for _ in 0..calls {
                r.call(n, &mut sink);
            }
            black_box(sink);
            start.elapsed().as_secs_f64() * 1e9 / calls as f64
        };
        let contenders: Vec<&OneRow> = groups
            .iter()
            .flat_map(|(ours, theirs)| std::iter::once(ours).chain(theirs))
            .collect();
        let mut best = vec![f64::MAX; contenders.len()];
        for _ in 0..trials {
            for (b, r) in best.iter_mut().zip(&contenders) {
                *b = b.min(time_one(r));
            }
        }
        let best_of = |name: &str| {
            contenders
                .iter()
                .zip(&best)
                .find(|(r, _)| r.name == name)
                .map(|(_, &b)| b)
                .expect("measured")
        };
        for (ours, theirs) in &groups {
            let hct_ns = best_of(&ours.name);
            for t in theirs {
                let ggml_ns = best_of(&t.name);
                println!(
                    "| {n} | {} | {hct_ns:.1} | {} | {ggml_ns:.1} | {:.2} |",
                    ours.name,
                    t.name,
                    ggml_ns / hct_ns
                );
            }
        }
    }
}

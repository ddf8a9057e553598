//! Encoder throughput of the int4 codecs' reference encoders (elements/second) on a
//! 4096×4096 Gaussian-like matrix (sigma 0.02, the scale of real weights): one thread,
//! row by row as the converter does; and all threads, rayon over 16-row chunks.
//!
//!   cargo bench -p hct-format --bench int4_encode
//!
//! Criterion reports elements/s as "thrpt". The output buffer is allocated once outside
//! the timed loop, so the figures are the encoder's, not the allocator's.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hct_format::codec::{self, int4, Codec};
use rayon::prelude::*;
use std::hint::black_box;
use std::time::Duration;

const ROWS: usize = 4096;
const COLS: usize = 4096;
const CHUNK_ROWS: usize = 16;
const IDS: [&str; 4] = [
    "int4_g8_fp16_v1",
    "int4_g16_fp16_v1",
    "int4_g32_fp16_v1",
    "int4_opt_v1",
];

fn encode_serial(c: &dyn Codec, m: &[f32], out: &mut [u8], row_bytes: usize) {
    for (row, dst) in m.chunks(COLS).zip(out.chunks_mut(row_bytes)) {
        c.encode_row(row, dst)
            .expect("finite Gaussian data encodes");
    }
}

fn encode_parallel(c: &dyn Codec, m: &[f32], out: &mut [u8], row_bytes: usize) {
    m.par_chunks(CHUNK_ROWS * COLS)
        .zip(out.par_chunks_mut(CHUNK_ROWS * row_bytes))
        .for_each(|(rows, dst)| encode_serial(c, rows, dst, row_bytes));
}

fn bench_int4_encode(crit: &mut Criterion) {
    let m = int4::sample::gaussian_like(4096, ROWS * COLS, 0.02);
    let mut group = crit.benchmark_group("int4_encode_4096x4096");
    group.throughput(Throughput::Elements((ROWS * COLS) as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    for id in IDS {
        let c = codec::find(id).expect("registered");
        let row_bytes = c.row_bytes(COLS as u64).unwrap() as usize;
        let mut out = vec![0u8; ROWS * row_bytes];
        group.bench_function(BenchmarkId::new("1_thread", id), |b| {
            b.iter(|| encode_serial(c, black_box(&m), &mut out, row_bytes))
        });
        group.bench_function(
            BenchmarkId::new(
                format!("rayon_{}_threads", rayon::current_num_threads()),
                id,
            ),
            |b| b.iter(|| encode_parallel(c, black_box(&m), &mut out, row_bytes)),
        );
        black_box(&out);
    }
    group.finish();
}

criterion_group!(benches, bench_int4_encode);
criterion_main!(benches);

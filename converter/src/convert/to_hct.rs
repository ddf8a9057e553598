//! Any source → HCT, streaming. Re-encoded tensors are cut into row chunks; the chunks of
//! the whole file form one queue that the worker threads run a bounded distance ahead of
//! the writer, across tensor boundaries, while this thread writes (and hashes) the results
//! in file order. Most weight matrices of small models are a single chunk, so a queue per
//! tensor would leave all but one worker idle. The output does not depend on the thread
//! count, and memory stays near a few chunks per worker.

use super::plan::{Choice, Plan};
use super::quality::ErrorSums;
use super::source::{Source, SrcTensor};
use super::transcode::{Encoded, Transcode};
use super::TensorReport;
use anyhow::{anyhow, Context, Result};
use hct_format::codec::{self, Codec};
use hct_format::container::TensorSink;
use hct_format::value::{Metadata, Value};
use hct_format::{TensorDesc, Writer};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};

/// Bytes per write of a carried-through payload.
const COPY_PIECE: usize = 8 << 20;

/// Write `src` to `out` under `plan`. Call from outside the rayon pool: this thread waits
/// on chunks that the pool's workers encode.
pub fn write_hct(
    src: &Source,
    out: &Path,
    plan: &Plan,
    extra_meta: Metadata,
    imatrix: Option<&super::imatrix::Imatrix>,
    entropy: Option<i32>,
    progress: &ProgressBar,
) -> Result<Vec<TensorReport>> {
    let tensors = src.tensors();
    let mut steps = Vec::with_capacity(tensors.len());
    for t in &tensors {
        let choice = plan.codec_for(&t.name, &t.shape, &t.codec);
        let mut imatrix_note = None;
        let transcode = if choice.codec != t.codec {
            let from = decoder(&t.codec, &t.name)?;
            let to = codec::find(&choice.codec)
                .ok_or_else(|| anyhow!("unknown codec {}", choice.codec))?;
            let mut tc = Transcode::new(from, to, &t.shape, t.data)
                .with_context(|| format!("tensor {:?}: {} → {}", t.name, t.codec, to.id()))?;
            if let (Some(m), true) = (imatrix, super::transcode::takes_importance(to)) {
                let row_len = *t.shape.last().unwrap_or(&1);
                let c = m
                    .columns(&t.name, row_len)
                    .with_context(|| format!("tensor {:?}", t.name))?;
                if c.is_some() {
                    imatrix_note = Some(format!("{} ({} format)", m.digest, m.format));
                }
                tc = tc.with_importance(c);
            }
            Some(tc)
        } else {
            None
        };
        steps.push(Step {
            choice,
            transcode,
            imatrix_note,
        });
    }
    let mut w = Writer::create(out)?;
    // Tensors from another HCT file may use codecs this build cannot decode; they are
    // still carried through byte for byte.
    w.allow_unknown_codecs(true);
    // Set when the writer gives up, so queued chunks are skipped instead of encoded.
    let cancel = AtomicBool::new(false);
    let reports = rayon::in_place_scope(|scope| {
        let mut queue = ChunkQueue {
            jobs: Box::new(
                steps
                    .iter()
                    .filter_map(|s| s.transcode.as_ref())
                    .flat_map(|tc| tc.chunks().map(move |(first, n)| (tc, first, n))),
            ),
            pending: VecDeque::new(),
            window: 2 * rayon::current_num_threads() + 2,
            cancel: &cancel,
        };
        let r = write_tensors(
            src, &tensors, &steps, plan, &mut w, &mut queue, scope, entropy, progress,
        );
        if r.is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
        r
    })?;
    let mut meta = src.metadata()?;
    meta.retain(|(k, _)| k != "hct.writer");
    meta.extend(extra_meta);
    meta.push((
        "hct.writer".into(),
        Value::string(concat!("hct ", env!("CARGO_PKG_VERSION"))),
    ));
    w.finish(meta)?;
    Ok(reports)
}

pub fn decoder(id: &str, tensor: &str) -> Result<&'static dyn Codec> {
    let c = codec::find(id).ok_or_else(|| {
        crate::exit::unsupported(format!(
            "tensor {tensor:?}: codec {id:?} is unknown to this build, so it cannot be re-encoded"
        ))
    })?;
    if !c.can_decode() {
        return Err(crate::exit::unsupported(format!("tensor {tensor:?}: this build cannot decode {id}, so it cannot be re-encoded (keep it with --keep)")));
    }
    Ok(c)
}

/// What happens to one source tensor.
struct Step<'a> {
    choice: Choice,
    /// `None` when the payload is carried through unchanged.
    transcode: Option<Transcode<'a>>,
    /// The importance matrix that weighted the encoder, for the tensor's provenance.
    imatrix_note: Option<String>,
}

/// The chunks of every re-encoded tensor in file order, run on the worker pool at most
/// `window` chunks ahead of the writer; results come back in the order they were queued.
struct ChunkQueue<'a> {
    jobs: Box<dyn Iterator<Item = (&'a Transcode<'a>, u64, u64)> + 'a>,
    pending: VecDeque<Receiver<Result<Encoded>>>,
    window: usize,
    cancel: &'a AtomicBool,
}

impl<'a> ChunkQueue<'a> {
    /// Queue chunks until `window` are in flight or none are left.
    fn fill<'scope>(&mut self, scope: &rayon::Scope<'scope>)
    where
        'a: 'scope,
    {
        while self.pending.len() < self.window {
            let Some((tc, first, n)) = self.jobs.next() else {
                return;
            };
            let (tx, rx) = sync_channel(1);
            let cancel = self.cancel;
            scope.spawn(move |_| {
                if !cancel.load(Ordering::Relaxed) {
                    // The receiver is gone only when the writer has already failed.
                    let _ = tx.send(tc.encode_chunk(first, n, true));
                }
            });
            self.pending.push_back(rx);
        }
    }

    /// The next chunk in file order, waiting for it if need be.
    fn next<'scope>(&mut self, scope: &rayon::Scope<'scope>) -> Result<Encoded>
    where
        'a: 'scope,
    {
        self.fill(scope);
        let rx = self
            .pending
            .pop_front()
            .ok_or_else(|| anyhow!("internal: chunk queue ran dry before the tensor ended"))?;
        // Refill before waiting, so the workers never idle while this thread writes.
        self.fill(scope);
        rx.recv()
            .map_err(|_| anyhow!("internal: an encoding worker stopped without a result"))?
    }
}

/// Where one tensor's payload goes: straight into the file, or (with `--entropy`) into a
/// buffer that the writer's entropy stage codes whole once the tensor is complete.
enum Out<'w> {
    Direct(TensorSink<'w>),
    Buffered {
        w: &'w mut Writer,
        desc: TensorDesc,
        buf: Vec<u8>,
        level: i32,
    },
}

impl Out<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Out::Direct(sink) => sink.write(bytes)?,
            Out::Buffered { buf, .. } => buf.extend_from_slice(bytes),
        }
        Ok(())
    }

    /// Close the tensor; returns the SHA-256 of the decoded payload it received.
    fn finish(self) -> Result<[u8; 32]> {
        Ok(match self {
            Out::Direct(sink) => sink.finish()?,
            Out::Buffered {
                w,
                desc,
                buf,
                level,
            } => {
                w.add_tensor_entropy(desc, &buf, level)?;
                Sha256::digest(&buf).into()
            }
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn write_tensors<'a, 'scope>(
    src: &Source,
    tensors: &[SrcTensor<'_>],
    steps: &'a [Step<'a>],
    plan: &Plan,
    w: &mut Writer,
    queue: &mut ChunkQueue<'a>,
    scope: &rayon::Scope<'scope>,
    entropy: Option<i32>,
    progress: &ProgressBar,
) -> Result<Vec<TensorReport>>
where
    'a: 'scope,
{
    let mut reports = Vec::with_capacity(tensors.len());
    for (t, step) in tensors.iter().zip(steps) {
        let target = &step.choice.codec;
        let codec_params = if step.transcode.is_some() {
            let mut p = vec![(
                "hct.encoder".to_string(),
                Value::string(concat!("hct ", env!("CARGO_PKG_VERSION"))),
            )];
            p.extend(hct_format::codec::find(target).map_or_else(Vec::new, |c| c.encoder_params()));
            if let Some(extra) = plan.provenance.get(&t.name) {
                p.extend(extra.iter().cloned());
            }
            // Provenance: which importance matrix weighted this tensor's encoder.
            if let Some(note) = &step.imatrix_note {
                p.push(("hct.imatrix".to_string(), Value::string(note.clone())));
            }
            p
        } else {
            let mut p = t.codec_params.clone();
            p.retain(|(k, _)| k != hct_format::container::entropy::PARAM_KEY);
            p
        };
        let desc = TensorDesc {
            name: t.name.clone(),
            shape: t.shape.clone(),
            source_dtype: t.source_dtype.clone(),
            codec: target.clone(),
            codec_params,
        };
        let mut sink = match entropy {
            Some(level) => Out::Buffered {
                w: &mut *w,
                desc,
                buf: Vec::new(),
                level,
            },
            None => Out::Direct(w.begin_tensor(desc)?),
        };
        let mut quality = None;
        match &step.transcode {
            Some(tc) => {
                let mut sums = ErrorSums::default();
                let mut check = t.check();
                for (first, n) in tc.chunks() {
                    let chunk = queue
                        .next(scope)
                        .with_context(|| format!("tensor {:?}: {} → {target}", t.name, t.codec))?;
                    check.update(tc.input(first, n));
                    sink.write(&chunk.bytes)?;
                    sums.add(&chunk.sums);
                }
                check.finish()?;
                sink.finish()?;
                progress.inc(t.data.len() as u64);
                quality = Some(sums.report());
            }
            None => {
                // Keep the workers busy on the next re-encoded tensors meanwhile.
                queue.fill(scope);
                for piece in t.data.chunks(COPY_PIECE) {
                    sink.write(piece)?;
                    progress.inc(piece.len() as u64);
                }
                // The sink hashed exactly the source bytes: check that digest, no second hash.
                let digest = sink.finish()?;
                t.verify_digest(digest)?;
            }
        }
        src.release(t);
        reports.push(TensorReport {
            name: t.name.clone(),
            shape: t.shape.clone(),
            source_codec: t.codec.clone(),
            codec: target.clone(),
            bytes_in: t.data.len() as u64,
            bytes_out: w.last_tensor_len().unwrap_or(0),
            elements: t.shape.iter().product(),
            quality,
            kept_because: step.choice.kept_because,
            fallback_because: step.choice.fallback_because,
        });
        tracing::debug!(tensor = %t.name, "written");
    }
    Ok(reports)
}

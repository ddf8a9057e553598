//! Entropy-coded payloads (SPEC.md §6.3): round trips through the writer's entropy stage and
//! the reader, random access by row, and every way a coded payload can be wrong.

use hct_format::codec;
use hct_format::container::entropy::{self, Chunking, EntropyError, Frames};
use hct_format::container::header::Header;
use hct_format::container::{Container, ErrorKind, Preamble};
use hct_format::{TensorDesc, Value, Writer};
use sha2::{Digest, Sha256};

/// Weights with the statistics of a real matrix closely enough for zstd to find something:
/// a smooth signal plus a few bits of pseudo-random noise, quantized to a coarse grid.
fn weights(rows: usize, row_len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..rows * row_len)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let noise = (s % 16) as f32 / 256.0;
            ((i % row_len) as f32 * 0.01).sin() * 0.05 + noise
        })
        .map(|x| (x * 512.0).round() / 512.0)
        .collect()
}

fn encode(codec_id: &str, rows: usize, row_len: usize, x: &[f32]) -> Vec<u8> {
    let c = codec::find(codec_id).unwrap();
    let rb = c.row_bytes(row_len as u64).unwrap() as usize;
    let mut out = vec![0u8; rb * rows];
    for (src, dst) in x.chunks(row_len).zip(out.chunks_mut(rb)) {
        c.encode_row(src, dst).unwrap();
    }
    out
}

fn desc(name: &str, shape: &[u64], codec_id: &str) -> TensorDesc {
    TensorDesc {
        name: name.into(),
        shape: shape.to_vec(),
        source_dtype: "f32".into(),
        codec: codec_id.into(),
        codec_params: vec![],
    }
}

/// Writes `tensors` (name, codec, shape, decoded payload) with the entropy stage at level 3;
/// returns the file's bytes and which tensors were coded.
fn write(
    dir: &tempfile::TempDir,
    tensors: &[(&str, &str, Vec<u64>, Vec<u8>)],
) -> (Vec<u8>, Vec<bool>) {
    let path = dir.path().join("e.hct");
    let mut w = Writer::create(&path).unwrap();
    let coded = tensors
        .iter()
        .map(|(n, c, s, p)| w.add_tensor_entropy(desc(n, s, c), p, 3).unwrap())
        .collect();
    w.finish(vec![("general.name".into(), Value::string("e"))])
        .unwrap();
    (std::fs::read(&path).unwrap(), coded)
}

fn open(bytes: Vec<u8>) -> Result<Container<Vec<u8>>, hct_format::Error> {
    Container::from_bytes(bytes, "e.hct")
}

#[test]
fn round_trips_for_several_codecs() {
    let dir = tempfile::tempdir().unwrap();
    let (rows, row_len) = (600, 1024); // 2.4 MB of f32: three 1 MiB chunks of 256 rows
    let x = weights(rows, row_len, 1);
    let mut tensors = vec![];
    for id in [
        "f32",
        "f16",
        "bf16",
        "ggml_q8_0",
        "int4_g32_fp16_v1",
        "int4_opt_v1",
    ] {
        let payload = encode(id, rows, row_len, &x);
        tensors.push((id, id, vec![rows as u64, row_len as u64], payload));
    }
    // Bytes zstd cannot shrink by 3% stay plain.
    let mut s = 0x9e37_79b9u32;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8
        })
        .collect();
    tensors.push(("noise", "u8", vec![4096], noise));
    let (bytes, coded) = write(&dir, &tensors);
    // The writer's decision is the 97% rule on the level-3 frames, nothing else.
    let expected: Vec<bool> = tensors
        .iter()
        .map(|(_, id, shape, p)| {
            let rb = codec::find(id)
                .unwrap()
                .row_bytes(*shape.last().unwrap())
                .unwrap();
            let rows = p.len() as u64 / rb;
            let stored = entropy::encode(p, Chunking::new(rows, rb), 3)
                .unwrap()
                .len();
            entropy::pays(stored as u64, p.len() as u64)
        })
        .collect();
    assert_eq!(coded, expected);
    assert!(
        coded[..4].iter().all(|&c| c),
        "f32, f16, bf16, q8_0 of coarse weights pay"
    );
    assert!(!coded[6], "noise never pays");
    let f = open(bytes).unwrap();
    assert_eq!(f.preamble().required_features, entropy::FEATURE_ENTROPY);
    assert_eq!(f.preamble().minor, entropy::ENTROPY_MINOR);
    f.validate().unwrap();
    f.verify().unwrap();
    for (name, id, shape, payload) in &tensors {
        let t = f.tensor(name).unwrap();
        assert_eq!(&*f.decoded_payload(t).unwrap(), &payload[..], "{id}");
        assert_eq!(f.decoded_len(t).unwrap(), payload.len() as u64);
        if !hct_format::container::is_entropy_coded(t) {
            assert_eq!(f.payload(t).unwrap(), &payload[..]);
            continue;
        }
        assert!(
            t.length < payload.len() as u64,
            "{id} coded but not smaller"
        );
        // No zero-copy slice of a coded tensor: the stored bytes are not codec bytes.
        let e = f.payload(t).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::EntropyCoded { .. }), "{e}");
        // Random access: rows inside, across and at the end of chunks decode like the
        // plain payload.
        let c = codec::find(id).unwrap();
        let rb = c.row_bytes(row_len as u64).unwrap() as usize;
        for (first, n) in [(0usize, 1usize), (250, 10), (511, 2), (590, 10)] {
            let mut got = vec![0f32; n * row_len];
            f.decode_rows(t, first as u64, &mut got).unwrap();
            let mut want = vec![0f32; row_len];
            for r in 0..n {
                c.decode_row(&payload[(first + r) * rb..][..rb], &mut want)
                    .unwrap();
                let g = &got[r * row_len..][..row_len];
                assert!(
                    g.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{id} row {}",
                    first + r
                );
            }
        }
        assert_eq!(shape[0], rows as u64);
    }
}

#[test]
fn a_file_without_coded_tensors_stays_1_0() {
    let dir = tempfile::tempdir().unwrap();
    let noise: Vec<u8> = (0..256u32).map(|i| (i * 97 % 251) as u8).collect();
    let (bytes, coded) = write(&dir, &[("n", "u8", vec![256], noise)]);
    assert_eq!(coded, [false]);
    let f = open(bytes).unwrap();
    assert_eq!((f.preamble().minor, f.preamble().required_features), (0, 0));
}

#[test]
fn chunk_rule() {
    let c = Chunking::new(600, 4096);
    assert_eq!((c.rows_per_chunk, c.chunks()), (256, 3));
    assert_eq!(c.chunk_decoded_len(2), 88 * 4096);
    // A row longer than 1 MiB is a chunk of its own.
    let c = Chunking::new(3, 3 << 20);
    assert_eq!((c.rows_per_chunk, c.chunks()), (1, 3));
    assert!(entropy::pays(97, 100) && !entropy::pays(98, 100));
    assert_eq!(entropy::parse_spec("zstd"), Ok(3));
    assert_eq!(entropy::parse_spec("zstd:19"), Ok(19));
    assert!(entropy::parse_spec("zstd:0").is_err());
    assert!(entropy::parse_spec("zstd:x").is_err());
    assert!(entropy::parse_spec("brotli").is_err());
}

/// A coded payload of 3 chunks, its chunking and the decoded bytes.
fn coded_payload() -> (Vec<u8>, Chunking, Vec<u8>) {
    let x = weights(600, 1024, 2);
    let decoded = encode("f32", 600, 1024, &x);
    let ch = Chunking::new(600, 4096);
    (entropy::encode(&decoded, ch, 3).unwrap(), ch, decoded)
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn truncated_or_lying_index_is_refused() {
    let (p, ch, decoded) = coded_payload();
    let mut out = vec![0u8; decoded.len()];
    let fr = Frames::parse(&p, ch).unwrap();
    fr.decode_chunks(0..ch.chunks(), &mut out).unwrap();
    assert_eq!(out, decoded);
    let index_err = |p: &[u8]| match Frames::parse(p, ch) {
        Err(EntropyError::Index { detail, .. }) => detail,
        Err(e) => panic!("wrong error {e:?}"),
        Ok(_) => panic!("accepted"),
    };
    // Truncated: shorter than the count, the index, or the frames it lists.
    assert!(index_err(&p[..5]).contains("shorter than"));
    assert!(index_err(&p[..20]).contains("does not fit"));
    assert!(index_err(&p[..p.len() - 1]).contains("frames take"));
    // A count other than the rule's.
    let mut bad = p.clone();
    bad[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(index_err(&bad).contains("chunk count"));
    // Huge decoded sizes: refused against the chunk rule before anything is allocated.
    let mut bad = p.clone();
    bad[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(index_err(&bad).contains("chunk rule gives"));
    // Huge stored sizes: they overflow or no longer add up.
    let mut bad = p.clone();
    bad[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    let d = index_err(&bad);
    assert!(d.contains("overflow") || d.contains("frames take"), "{d}");
}

#[test]
fn frames_that_decode_to_the_wrong_size_are_refused() {
    let (p, ch, decoded) = coded_payload();
    let mut out = vec![0u8; decoded.len()];
    // Reverse the frames (index entries keep the rule's decoded sizes): every frame is
    // intact, but chunk 0 now holds the short last chunk's frame and decodes to fewer
    // bytes than the rule's, and chunk 2 a full chunk's, more than its capacity.
    let fr = Frames::parse(&p, ch).unwrap();
    let r: Vec<_> = (0..3).map(|i| fr.frame_range(i)).collect();
    let body = |i: usize| &p[r[i].start as usize..r[i].end as usize];
    let mut bad = p[..8].to_vec();
    for (i, j) in [(0usize, 2usize), (1, 1), (2, 0)] {
        bad.extend_from_slice(&le64(&p, 8 + 16 * i).to_le_bytes());
        bad.extend_from_slice(&(body(j).len() as u64).to_le_bytes());
    }
    for j in [2, 1, 0] {
        bad.extend_from_slice(body(j));
    }
    let fr = Frames::parse(&bad, ch).unwrap();
    match fr.decode_chunks(0..3, &mut out) {
        Err(EntropyError::Frame {
            chunk: 0, detail, ..
        }) => {
            assert!(detail.contains("decodes to"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    // A frame decoding to more than its chunk fails on the fixed capacity.
    match fr.decode_chunks(2..3, &mut out[..ch.chunk_decoded_len(2) as usize]) {
        Err(EntropyError::Frame {
            chunk: 2, detail, ..
        }) => {
            assert!(detail.contains("does not decode"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    // Garbage where a frame should be.
    let mut bad = p.clone();
    let start = r[1].start as usize;
    bad[start..start + 4].copy_from_slice(b"junk");
    let fr = Frames::parse(&bad, ch).unwrap();
    assert!(matches!(
        fr.decode_chunks(0..3, &mut out),
        Err(EntropyError::Frame { chunk: 1, .. })
    ));
}

/// Re-seal a file after its bytes were changed: every payload checksum and the header
/// checksum recomputed, so only the rule under test can refuse it.
fn reseal(mut bytes: Vec<u8>, edit_header: impl FnOnce(&mut Header)) -> Vec<u8> {
    let f = Container::from_bytes(bytes.clone(), "x").unwrap();
    let mut h = f.header().clone();
    let p = f.preamble().clone();
    for t in &mut h.tensors {
        t.sha256 = Sha256::digest(&bytes[t.offset as usize..(t.offset + t.length) as usize]).into();
    }
    edit_header(&mut h);
    let enc = h.encode();
    assert_eq!(
        enc.len() as u64,
        p.header_len,
        "edits keep the header's length"
    );
    bytes[p.header_offset as usize..].copy_from_slice(&enc);
    let pre = Preamble {
        header_sha256: Sha256::digest(&enc).into(),
        ..p
    };
    bytes[..64].copy_from_slice(&pre.encode());
    bytes
}

fn one_coded_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let x = weights(600, 1024, 3);
    let (bytes, coded) = write(
        &dir,
        &[("w", "f16", vec![600, 1024], encode("f16", 600, 1024, &x))],
    );
    assert_eq!(coded, [true]);
    bytes
}

#[test]
fn damaged_frames_name_file_tensor_chunk_and_offset() {
    let bytes = one_coded_file();
    let f = open(bytes.clone()).unwrap();
    let t = f.tensor("w").unwrap().clone();
    let fr = f.frames(&t, codec::find("f16").unwrap()).unwrap();
    let r1 = fr.frame_range(1);
    // A flipped byte is a checksum mismatch for verification...
    let mut flipped = bytes.clone();
    flipped[(t.offset + r1.start + 1) as usize] ^= 0x40;
    let e = open(flipped.clone()).unwrap().verify().unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::PayloadChecksumMismatch { .. }),
        "{e}"
    );
    // ...and, re-sealed so that checksums pass, a frame error for validation.
    let forged = reseal(flipped, |_| {});
    let f = open(forged).unwrap();
    f.verify().unwrap();
    let e = f.validate().unwrap_err();
    match &e.kind {
        ErrorKind::EntropyFrame {
            tensor,
            chunk,
            offset,
            ..
        } => {
            assert_eq!((tensor.as_str(), *chunk), ("w", 1));
            assert_eq!(*offset, t.offset + r1.start);
        }
        _ => panic!("{e}"),
    }
    let msg = e.to_string();
    assert!(
        msg.starts_with("e.hct: tensor \"w\": entropy chunk 1"),
        "{msg}"
    );
}

#[test]
fn readers_refuse_what_they_cannot_read() {
    let bytes = one_coded_file();
    // Feature bit cleared while the header marks a coded tensor: refused at open.
    let mut b = bytes.clone();
    b[12] &= !1;
    let e = open(b).err().unwrap();
    assert!(
        matches!(e.kind, ErrorKind::EntropyFeatureMismatch { .. }),
        "{e}"
    );
    // A bit this reader does not know (what a 1.0 reader sees in bit 0).
    let mut b = bytes.clone();
    b[12] |= 2;
    let e = open(b).err().unwrap();
    assert!(
        matches!(e.kind, ErrorKind::UnknownRequiredFeatures { bits: 2 }),
        "{e}"
    );
    // An unknown transform: refused for that tensor, with its name and the value.
    let forged = reseal(bytes.clone(), |h| {
        for (k, v) in &mut h.tensors[0].codec_params {
            if k == entropy::PARAM_KEY {
                *v = Value::string("brot");
            }
        }
    });
    let f = open(forged).unwrap();
    let t = f.tensor("w").unwrap();
    for e in [f.validate().unwrap_err(), f.decoded_payload(t).unwrap_err()] {
        assert!(matches!(e.kind, ErrorKind::UnknownEntropy { .. }), "{e}");
        assert!(e.to_string().contains("\"brot\""), "{e}");
    }
    assert!(f.payload(t).is_err());
    // The bit set in a file with no coded tensor.
    let dir = tempfile::tempdir().unwrap();
    let (plain, _) = write(&dir, &[("n", "u8", vec![4], vec![1, 2, 3, 4])]);
    let mut b = plain;
    b[12] |= 1;
    let e = open(b).err().unwrap();
    assert!(
        matches!(e.kind, ErrorKind::EntropyFeatureMismatch { .. }),
        "{e}"
    );
}

#[test]
fn callers_cannot_mark_tensors_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::create(dir.path().join("x.hct")).unwrap();
    let mut d = desc("w", &[4], "u8");
    d.codec_params
        .push((entropy::PARAM_KEY.into(), Value::string(entropy::ZSTD)));
    assert!(w.add_tensor(d, &[0, 0, 0, 0]).is_err());
}

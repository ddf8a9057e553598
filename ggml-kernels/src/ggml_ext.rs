//! libhct as a ggml plugin: registers HCT's int4 codecs as ggml *extension types* in a ggml
//! built with `compat-tests/plugin/ggml-ext-types.patch`, so llama.cpp runs plugin GGUFs
//! (`hct convert --gguf-mode plugin`) with libhct's kernels.
//!
//! The patch adds two registration calls, which this module finds with
//! `dlsym(RTLD_DEFAULT, …)` so libhct never links ggml:
//! - `ggml_ext_type_register(const struct ggml_type_traits *)` (ggml-base) takes block size,
//!   bytes and `to_float` and returns the process-local slot;
//! - `ggml_cpu_ext_type_set_traits(slot, const struct ggml_type_traits_cpu *)` (ggml-cpu)
//!   takes `vec_dot` and `vec_dot_type`;
//! - `ggml_cpu_ext_type_set_gemm(slot, gemm)` (ggml-cpu) takes the multi-row kernel
//!   ([`crate::gemm`]) that `mul_mat` then calls once per chunk instead of `vec_dot` per row
//!   pair. Fast mode only; `HCT_PLUGIN_GEMM=0` leaves it out (for measuring the per-pair path
//!   in the same build), and a patched ggml without the call simply keeps `vec_dot`.
//!
//! Two ways in:
//! - a host application calls [`hct_ggml_register_all`] after ggml is loaded;
//! - an unmodified llama.cpp tool gets the codecs from `LD_PRELOAD=libhct.so`: a constructor
//!   in `.init_array` registers them when the library is loaded (set `HCT_GGML_AUTOREGISTER=0`
//!   to turn that off). Preloaded libraries are initialised after the libraries they do not
//!   depend on have been relocated, so ggml's symbols resolve; if they do not (ggml absent,
//!   unpatched, or loaded later with `dlopen`), the constructor does nothing and says why
//!   only when `HCT_PLUGIN_STATS` is set.
//!
//! Modes (`HCT_PLUGIN_MODE`):
//! - `fast` (default): ggml quantizes activations to its Q8_0 blocks and calls libhct's
//!   multi-row kernel once per chunk of the product (or `vec_dot`, int4 weights · Q8_0, per
//!   row pair); each output is the same bits either way.
//! - `reference`: only `to_float` is registered; the patched ggml decodes each weight matrix
//!   to F32 with it and multiplies through its own F32 path, so results are bit for bit those
//!   of the same HCT file decoded to an F32 GGUF and run by stock llama.cpp.
//!
//! Proof of work: with `HCT_PLUGIN_STATS=PATH` (or `-` for stderr) the registered entry
//! points count calls and elements per codec, and the counts are written as JSON when the
//! process exits, whichever way the codecs were registered (also readable at any time with
//! [`hct_ggml_stats_json`]). Without it the
//! uncounted entry points are registered, so timing runs pay nothing.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::io::Write;
use std::panic::catch_unwind;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::gemm::GemmFn;
use crate::registry::{for_each_codec, CodecIndex, N_CODECS};
use crate::traits::{self, FromFloatFn, ToFloatFn, VecDotFn};

/// Mirror of ggml's `struct ggml_type_traits` (`ggml/include/ggml.h` of the pinned ggml
/// 0.25.3). `compat-tests/plugin/check_abi.c` compares sizes and offsets with the header.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct GgmlTypeTraits {
    pub type_name: *const c_char,
    pub blck_size: i64,
    pub blck_size_interleave: i64,
    pub type_size: usize,
    pub is_quantized: bool,
    pub to_float: Option<ToFloatFn>,
    pub from_float_ref: Option<FromFloatFn>,
}

/// Mirror of ggml's `struct ggml_type_traits_cpu` (`ggml/include/ggml-cpu.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct GgmlTypeTraitsCpu {
    pub from_float: Option<FromFloatFn>,
    pub vec_dot: Option<VecDotFn>,
    /// `enum ggml_type`: an `int` in every ABI ggml supports.
    pub vec_dot_type: c_int,
    pub nrows: i64,
}

// The same numbers are asserted against the real headers by compat-tests/plugin/check_abi.c.
#[cfg(target_pointer_width = "64")]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<GgmlTypeTraits>() == 56);
    assert!(offset_of!(GgmlTypeTraits, blck_size) == 8);
    assert!(offset_of!(GgmlTypeTraits, type_size) == 24);
    assert!(offset_of!(GgmlTypeTraits, is_quantized) == 32);
    assert!(offset_of!(GgmlTypeTraits, to_float) == 40);
    assert!(offset_of!(GgmlTypeTraits, from_float_ref) == 48);
    assert!(size_of::<GgmlTypeTraitsCpu>() == 32);
    assert!(offset_of!(GgmlTypeTraitsCpu, vec_dot) == 8);
    assert!(offset_of!(GgmlTypeTraitsCpu, vec_dot_type) == 16);
    assert!(offset_of!(GgmlTypeTraitsCpu, nrows) == 24);
};

/// ggml's `GGML_TYPE_F32`: the activation type of the reference mode.
const GGML_TYPE_F32: c_int = 0;

/// How the registered types multiply matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginMode {
    Fast,
    Reference,
}

impl PluginMode {
    pub fn name(self) -> &'static str {
        match self {
            PluginMode::Fast => "fast",
            PluginMode::Reference => "reference",
        }
    }

    /// `HCT_PLUGIN_MODE`: unset or `fast` → Fast, `reference` → Reference.
    pub fn from_env() -> Result<PluginMode, String> {
        match std::env::var("HCT_PLUGIN_MODE") {
            Err(_) => Ok(PluginMode::Fast),
            Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
                "" | "fast" => Ok(PluginMode::Fast),
                "reference" | "ref" => Ok(PluginMode::Reference),
                other => Err(format!(
                    "HCT_PLUGIN_MODE={other:?} is neither 'fast' nor 'reference'"
                )),
            },
        }
    }
}

/// Why registration did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// `ggml_ext_type_register` or `ggml_cpu_ext_type_set_traits` is not in the process: no
    /// ggml loaded yet, or a ggml without the extension-type patch.
    GgmlNotFound {
        symbol: &'static str,
    },
    /// ggml refused the type (all extension slots taken, or a name clash with a built-in).
    Refused {
        codec: &'static str,
    },
    /// ggml-cpu refused the kernels.
    CpuRefused {
        codec: &'static str,
    },
    /// `HCT_PLUGIN_GEMM` is neither `0` nor `1`.
    BadGemmSetting(String),
    BadMode(String),
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::GgmlNotFound { symbol } => write!(
                f,
                "{symbol} not found: ggml is not loaded, or was built without the HCT extension-type patch"
            ),
            RegisterError::Refused { codec } => write!(
                f,
                "ggml refused extension type {codec} (no free slot, or a built-in type has that name)"
            ),
            RegisterError::CpuRefused { codec } => {
                write!(f, "ggml-cpu refused the kernels of {codec}")
            }
            RegisterError::BadMode(m) | RegisterError::BadGemmSetting(m) => f.write_str(m),
        }
    }
}

/// One registered codec: its id and the slot ggml gave it in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub codec: &'static str,
    pub slot: c_int,
    /// Whether ggml took the multi-row kernel.
    pub gemm: bool,
}

/// `HCT_PLUGIN_GEMM`: unset or `1` → register the multi-row kernels, `0` → `vec_dot` only.
pub fn gemm_from_env() -> Result<bool, String> {
    match std::env::var("HCT_PLUGIN_GEMM") {
        Err(_) => Ok(true),
        Ok(v) => match v.trim() {
            "" | "1" => Ok(true),
            "0" => Ok(false),
            other => Err(format!("HCT_PLUGIN_GEMM={other:?} is neither 0 nor 1")),
        },
    }
}

/// Whether the plugin registers `codec_id` with ggml: a codec with kernels here that a plugin
/// GGUF carries as an extension type (`hct-format` decides: a block layout and no built-in
/// ggml type). ggml's own types keep ggml's kernels.
pub fn is_extension_codec(codec_id: &str) -> bool {
    hct_format::gguf::extension::extension_block_geometry(codec_id).is_some()
}

/// Register every HCT codec that has a ggml block layout and no built-in ggml type. Calling
/// it again re-registers the same names into the same slots (ggml keys them by name).
pub fn register_all(
    mode: PluginMode,
    counting: bool,
    gemm: bool,
) -> Result<Vec<Registered>, RegisterError> {
    type RegisterFn = unsafe extern "C" fn(*const GgmlTypeTraits) -> c_int;
    type IsExtFn = unsafe extern "C" fn(c_int) -> bool;
    type SetCpuFn = unsafe extern "C" fn(c_int, *const GgmlTypeTraitsCpu) -> bool;
    type SetGemmFn = unsafe extern "C" fn(c_int, Option<GemmFn>) -> bool;
    let symbol = |name: &'static CStr| {
        find_symbol(name).ok_or(RegisterError::GgmlNotFound {
            symbol: name.to_str().unwrap_or("?"),
        })
    };
    let register = symbol(c"ggml_ext_type_register")?;
    let is_ext = symbol(c"ggml_is_ext_type")?;
    let set_cpu = symbol(c"ggml_cpu_ext_type_set_traits")?;
    // Optional: a ggml patched before the multi-row hook existed runs vec_dot per pair.
    let set_gemm = find_symbol(c"ggml_cpu_ext_type_set_gemm");
    // SAFETY: the patch declares these symbols with exactly these C signatures.
    let (register, is_ext, set_cpu) = unsafe {
        (
            std::mem::transmute::<*mut c_void, RegisterFn>(register),
            std::mem::transmute::<*mut c_void, IsExtFn>(is_ext),
            std::mem::transmute::<*mut c_void, SetCpuFn>(set_cpu),
        )
    };

    let mut done = Vec::new();
    for (index, t) in traits::all_traits().iter().enumerate() {
        if !is_extension_codec(t.codec_id) {
            continue;
        }
        let counted = &COUNTED[index];
        let base = GgmlTypeTraits {
            type_name: counted.c_name.as_ptr(),
            blck_size: t.block_size as i64,
            blck_size_interleave: 0,
            type_size: t.type_size as usize,
            is_quantized: true,
            to_float: Some(if counting {
                counted.to_float
            } else {
                t.to_float
            }),
            from_float_ref: None,
        };
        // SAFETY: a valid traits record; ggml copies it, and type_name is 'static.
        let slot = unsafe { register(&base) };
        // ggml answers GGML_TYPE_COUNT when it refuses, which is not an extension slot.
        // SAFETY: a plain query on an int.
        if !unsafe { is_ext(slot) } {
            return Err(RegisterError::Refused { codec: t.codec_id });
        }
        let cpu = match mode {
            PluginMode::Fast => GgmlTypeTraitsCpu {
                from_float: None,
                vec_dot: Some(if counting { counted.vec_dot } else { t.vec_dot }),
                vec_dot_type: t.vec_dot_type as c_int,
                nrows: t.nrows as i64,
            },
            PluginMode::Reference => GgmlTypeTraitsCpu {
                from_float: None,
                vec_dot: None,
                vec_dot_type: GGML_TYPE_F32,
                nrows: 1,
            },
        };
        // SAFETY: slot was just returned by ggml; the record is valid and copied.
        if !unsafe { set_cpu(slot, &cpu) } {
            return Err(RegisterError::CpuRefused { codec: t.codec_id });
        }
        let mut took_gemm = false;
        if let (Some(set_gemm), PluginMode::Fast, true) = (set_gemm, mode, gemm) {
            // SAFETY: the patch declares this symbol with this signature.
            let set_gemm = unsafe { std::mem::transmute::<*mut c_void, SetGemmFn>(set_gemm) };
            let kernel = if counting { counted.gemm } else { t.gemm };
            // SAFETY: slot has vec_dot (fast mode, just set); ggml keeps the function pointer.
            took_gemm = unsafe { set_gemm(slot, Some(kernel)) };
            if !took_gemm {
                return Err(RegisterError::CpuRefused { codec: t.codec_id });
            }
        }
        done.push(Registered {
            codec: t.codec_id,
            slot,
            gemm: took_gemm,
        });
    }
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    state.mode = Some(mode);
    state.counting = counting;
    state.registered = done.clone();
    Ok(done)
}

/// Register the codecs with the mode from `HCT_PLUGIN_MODE` (counting when
/// `HCT_PLUGIN_STATS` is set). Returns the number of codecs registered, or a negative
/// code: -1 ggml's registration functions are not in the process (not loaded, or not
/// patched), -2 ggml refused a type, -3 ggml-cpu refused its kernels, -4 a bad
/// `HCT_PLUGIN_MODE`, -5 an internal error.
#[no_mangle]
pub extern "C" fn hct_ggml_register_all() -> c_int {
    let result = catch_unwind(|| {
        let mode = PluginMode::from_env().map_err(RegisterError::BadMode)?;
        let gemm = gemm_from_env().map_err(RegisterError::BadGemmSetting)?;
        register_all(mode, stats_destination().is_some(), gemm)
    });
    match result {
        Ok(Ok(done)) => {
            // A host that registers the codecs itself gets the exit report too.
            REPORT_AT_EXIT.store(stats_destination().is_some(), Ordering::Relaxed);
            done.len() as c_int
        }
        Ok(Err(e)) => {
            STATE.lock().unwrap_or_else(|e| e.into_inner()).last_error = Some(e.to_string());
            match e {
                RegisterError::GgmlNotFound { .. } => -1,
                RegisterError::Refused { .. } => -2,
                RegisterError::CpuRefused { .. } => -3,
                RegisterError::BadMode(_) | RegisterError::BadGemmSetting(_) => -4,
            }
        }
        Err(_) => -5,
    }
}

/// Write the call counts as NUL-terminated JSON into `buf` (`cap` bytes) and return the
/// JSON's length without the NUL. If `cap` is too small (or `buf` is null) nothing is
/// written: call again with a buffer of the returned length + 1.
///
/// # Safety
/// `buf` must be null or point at `cap` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn hct_ggml_stats_json(buf: *mut c_char, cap: usize) -> usize {
    let json = stats_json();
    let bytes = json.as_bytes();
    if !buf.is_null() && cap > bytes.len() {
        // SAFETY: the caller gives cap writable bytes, and bytes.len() + 1 <= cap.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
            buf.add(bytes.len()).write(0);
        }
    }
    bytes.len()
}

/// The counts so far, as JSON: mode, slots, and per codec the `vec_dot` and `to_float` calls
/// and the elements they covered.
pub fn stats_json() -> String {
    let state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let totals = Counts::sum();
    let mut codecs = Vec::new();
    let extension_codecs = traits::all_traits()
        .iter()
        .enumerate()
        .filter(|(_, t)| is_extension_codec(t.codec_id));
    for (i, t) in extension_codecs {
        let registered = state.registered.iter().find(|r| r.codec == t.codec_id);
        let slot = registered.map_or("null".to_string(), |r| r.slot.to_string());
        let gemm = registered.is_some_and(|r| r.gemm);
        codecs.push(format!(
            "\"{}\":{{\"slot\":{slot},\"gemm\":{gemm},\"vec_dot_calls\":{},\"vec_dot_elements\":{},\"gemm_calls\":{},\"gemm_dots\":{},\"to_float_calls\":{},\"to_float_elements\":{}}}",
            t.codec_id,
            totals.vec_dot_calls[i],
            totals.vec_dot_elements[i],
            totals.gemm_calls[i],
            totals.gemm_dots[i],
            totals.to_float_calls[i],
            totals.to_float_elements[i]
        ));
    }
    let error = match &state.last_error {
        Some(e) => format!("\"{}\"", e.replace('\\', "\\\\").replace('"', "\\\"")),
        None => "null".into(),
    };
    format!(
        "{{\"mode\":{},\"counting\":{},\"isa\":\"{}\",\"error\":{error},\"codecs\":{{{}}}}}",
        state
            .mode
            .map_or("null".to_string(), |m| format!("\"{}\"", m.name())),
        state.counting,
        crate::platform::active().isa().name(),
        codecs.join(",")
    )
}

// ---------------------------------------------------------------------------------------
// The codecs, their counted entry points, and the counters
// ---------------------------------------------------------------------------------------

/// A codec's counted entry points and its name for ggml, generated for every registry entry.
struct Counted {
    c_name: &'static CStr,
    to_float: ToFloatFn,
    vec_dot: VecDotFn,
    gemm: GemmFn,
}

/// Per thread, so counting never makes two threads write one cache line. Indexed like the
/// traits tables (registry order).
struct Counts<T> {
    vec_dot_calls: [T; N_CODECS],
    vec_dot_elements: [T; N_CODECS],
    /// Multi-row calls, and the dot products (row pairs) they computed.
    gemm_calls: [T; N_CODECS],
    gemm_dots: [T; N_CODECS],
    to_float_calls: [T; N_CODECS],
    to_float_elements: [T; N_CODECS],
}

impl Counts<u64> {
    fn sum() -> Counts<u64> {
        let mut out = Counts {
            vec_dot_calls: [0; N_CODECS],
            vec_dot_elements: [0; N_CODECS],
            gemm_calls: [0; N_CODECS],
            gemm_dots: [0; N_CODECS],
            to_float_calls: [0; N_CODECS],
            to_float_elements: [0; N_CODECS],
        };
        let threads = THREADS.lock().unwrap_or_else(|e| e.into_inner());
        for t in threads.iter() {
            for i in 0..N_CODECS {
                out.vec_dot_calls[i] += t.vec_dot_calls[i].load(Ordering::Relaxed);
                out.vec_dot_elements[i] += t.vec_dot_elements[i].load(Ordering::Relaxed);
                out.gemm_calls[i] += t.gemm_calls[i].load(Ordering::Relaxed);
                out.gemm_dots[i] += t.gemm_dots[i].load(Ordering::Relaxed);
                out.to_float_calls[i] += t.to_float_calls[i].load(Ordering::Relaxed);
                out.to_float_elements[i] += t.to_float_elements[i].load(Ordering::Relaxed);
            }
        }
        out
    }
}

static THREADS: Mutex<Vec<&'static Counts<AtomicU64>>> = Mutex::new(Vec::new());

thread_local! {
    static MINE: &'static Counts<AtomicU64> = {
        let counts: &'static Counts<AtomicU64> = Box::leak(Box::new(Counts {
            vec_dot_calls: std::array::from_fn(|_| AtomicU64::new(0)),
            vec_dot_elements: std::array::from_fn(|_| AtomicU64::new(0)),
            gemm_calls: std::array::from_fn(|_| AtomicU64::new(0)),
            gemm_dots: std::array::from_fn(|_| AtomicU64::new(0)),
            to_float_calls: std::array::from_fn(|_| AtomicU64::new(0)),
            to_float_elements: std::array::from_fn(|_| AtomicU64::new(0)),
        }));
        THREADS.lock().unwrap_or_else(|e| e.into_inner()).push(counts);
        counts
    };
}

/// Add to a counter only this thread writes: a plain load and store, no locked instruction.
#[inline]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// `to_float` of registry entry `C` on the active backend, counted.
///
/// # Safety
/// ggml's `to_float` contract (see [`crate::traits`]).
unsafe extern "C" fn counted_to_float<const C: usize>(x: *const c_void, y: *mut f32, k: i64) {
    let _ = MINE.try_with(|c| {
        bump(&c.to_float_calls[C], 1);
        bump(&c.to_float_elements[C], k.max(0) as u64);
    });
    // SAFETY: forwarded caller contract.
    unsafe { (traits::all_traits()[C].to_float)(x, y, k) }
}

/// `vec_dot` of registry entry `C` on the active backend, counted.
///
/// # Safety
/// ggml's `vec_dot` contract (see [`crate::traits`]).
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn counted_vec_dot<const C: usize>(
    n: c_int,
    s: *mut f32,
    bs: usize,
    x: *const c_void,
    bx: usize,
    y: *const c_void,
    by: usize,
    nrc: c_int,
) {
    let _ = MINE.try_with(|c| {
        bump(&c.vec_dot_calls[C], 1);
        bump(&c.vec_dot_elements[C], n.max(0) as u64);
    });
    // SAFETY: forwarded caller contract.
    unsafe { (traits::all_traits()[C].vec_dot)(n, s, bs, x, bx, y, by, nrc) }
}

/// The multi-row entry of registry entry `C` on the active backend, counted.
///
/// # Safety
/// The multi-row contract (see [`crate::gemm`]).
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn counted_gemm<const C: usize>(
    n: c_int,
    s: *mut f32,
    bs: usize,
    x: *const c_void,
    bx: usize,
    y: *const c_void,
    by: usize,
    nr: i64,
    nc: i64,
) {
    let _ = MINE.try_with(|c| {
        bump(&c.gemm_calls[C], 1);
        bump(
            &c.gemm_dots[C],
            (nr.max(0) as u64).saturating_mul(nc.max(0) as u64),
        );
    });
    // SAFETY: forwarded caller contract.
    unsafe { (traits::all_traits()[C].gemm)(n, s, bs, x, bx, y, by, nr, nc) }
}

macro_rules! counted_entries {
    (; $($id:ident => $format:ident,)*) => {
        [$(Counted {
            c_name: match CStr::from_bytes_with_nul(concat!(stringify!($id), "\0").as_bytes()) {
                Ok(c) => c,
                Err(_) => panic!("codec ids hold no NUL"),
            },
            to_float: counted_to_float::<{ CodecIndex::$id as usize }>,
            vec_dot: counted_vec_dot::<{ CodecIndex::$id as usize }>,
            gemm: counted_gemm::<{ CodecIndex::$id as usize }>,
        },)*]
    };
}

static COUNTED: [Counted; N_CODECS] = for_each_codec!(counted_entries!());

// ---------------------------------------------------------------------------------------
// Process state, the constructor and the exit report
// ---------------------------------------------------------------------------------------

struct State {
    mode: Option<PluginMode>,
    counting: bool,
    registered: Vec<Registered>,
    last_error: Option<String>,
}

static STATE: Mutex<State> = Mutex::new(State {
    mode: None,
    counting: false,
    registered: Vec::new(),
    last_error: None,
});

/// Where the exit report goes: `HCT_PLUGIN_STATS` (a path, or `-` for stderr).
fn stats_destination() -> Option<String> {
    static DEST: OnceLock<Option<String>> = OnceLock::new();
    DEST.get_or_init(|| {
        std::env::var("HCT_PLUGIN_STATS")
            .ok()
            .filter(|s| !s.is_empty())
    })
    .clone()
}

static REPORT_AT_EXIT: AtomicBool = AtomicBool::new(false);

extern "C" fn register_on_load() {
    let _ = catch_unwind(|| {
        if std::env::var("HCT_GGML_AUTOREGISTER").is_ok_and(|v| v.trim() == "0") {
            return;
        }
        // Only a process that has a patched ggml gets codecs; any other process that loads
        // libhct (a host that never uses ggml) is left alone.
        if find_symbol(c"ggml_ext_type_register").is_none() {
            if stats_destination().is_some() {
                eprintln!("hct: no patched ggml in this process; codecs not registered");
            }
            return;
        }
        let code = hct_ggml_register_all();
        if code < 0 {
            let state = STATE.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!(
                "hct: registering codecs with ggml failed: {}",
                state.last_error.as_deref().unwrap_or("unknown error")
            );
        }
        REPORT_AT_EXIT.store(stats_destination().is_some(), Ordering::Relaxed);
    });
}

extern "C" fn report_on_exit() {
    let _ = catch_unwind(|| {
        if !REPORT_AT_EXIT.load(Ordering::Relaxed) {
            return;
        }
        let Some(dest) = stats_destination() else {
            return;
        };
        let json = stats_json();
        if dest == "-" {
            let _ = writeln!(std::io::stderr(), "hct-plugin-stats: {json}");
        } else if let Err(e) = std::fs::write(&dest, json + "\n") {
            eprintln!("hct: cannot write HCT_PLUGIN_STATS={dest}: {e}");
        }
    });
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static REGISTER_ON_LOAD: extern "C" fn() = register_on_load;

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".fini_array"]
static REPORT_ON_EXIT: extern "C" fn() = report_on_exit;

/// A symbol anywhere in the process, or `None`.
fn find_symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the name up.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_extension_codec_has_kernels_and_the_gguf_geometry() {
        let mine: Vec<&str> = traits::all_traits()
            .iter()
            .map(|t| t.codec_id)
            .filter(|id| is_extension_codec(id))
            .collect();
        let listed: Vec<&str> = hct_format::gguf::extension::extension_codecs().collect();
        assert_eq!(listed, mine, "same codecs, same order");
        for (t, counted) in traits::all_traits().iter().zip(&COUNTED) {
            assert_eq!(counted.c_name.to_str().unwrap(), t.codec_id);
            if is_extension_codec(t.codec_id) {
                assert_eq!(
                    hct_format::gguf::extension::extension_block_geometry(t.codec_id),
                    Some((t.block_size, t.type_size)),
                    "{}: the GGUF reader and the kernels agree on the block",
                    t.codec_id
                );
            }
        }
    }

    #[test]
    fn counted_entry_points_compute_what_the_plain_ones_do_and_count() {
        let mut rng = crate::harness::Rng::new(3);
        for (i, (t, counted)) in traits::all_traits().iter().zip(&COUNTED).enumerate() {
            let n = 192usize; // whole blocks of every layout, 64-element super-blocks included
            let x = crate::harness::random_weight_row(&mut rng, t.format, n, false);
            let y =
                crate::harness::random_activation_row(&mut rng, t.format.activation(), n, false);
            let before = Counts::sum();
            let (mut a, mut b) = (0.0f32, 0.0f32);
            // SAFETY: rows of n elements, one output float, ggml's nrc = 1.
            unsafe {
                (t.vec_dot)(
                    n as c_int,
                    &mut a,
                    0,
                    x.as_ptr().cast(),
                    0,
                    y.as_ptr().cast(),
                    0,
                    1,
                );
                (counted.vec_dot)(
                    n as c_int,
                    &mut b,
                    0,
                    x.as_ptr().cast(),
                    0,
                    y.as_ptr().cast(),
                    0,
                    1,
                );
            }
            assert_eq!(a.to_bits(), b.to_bits(), "{}", t.codec_id);
            let mut fa = vec![0.0f32; n];
            let mut fb = vec![0.0f32; n];
            // SAFETY: x holds the row; fa and fb n floats each.
            unsafe {
                (t.to_float)(x.as_ptr().cast(), fa.as_mut_ptr(), n as i64);
                (counted.to_float)(x.as_ptr().cast(), fb.as_mut_ptr(), n as i64);
            }
            assert_eq!(fa, fb);
            let mut g = [0.0f32; 1];
            // SAFETY: one weight row, one activation row, one output.
            unsafe {
                (counted.gemm)(
                    n as c_int,
                    g.as_mut_ptr(),
                    4,
                    x.as_ptr().cast(),
                    0,
                    y.as_ptr().cast(),
                    0,
                    1,
                    1,
                );
            }
            assert_eq!(
                g[0].to_bits(),
                a.to_bits(),
                "{}: gemm of one pair is its vec_dot",
                t.codec_id
            );
            let after = Counts::sum();
            assert!(after.gemm_calls[i] > before.gemm_calls[i]);
            assert!(after.gemm_dots[i] > before.gemm_dots[i]);
            // Other tests may run on other threads, so only this thread's share is exact;
            // at least these calls were counted.
            assert!(after.vec_dot_calls[i] > before.vec_dot_calls[i]);
            assert!(after.vec_dot_elements[i] >= before.vec_dot_elements[i] + n as u64);
            assert!(after.to_float_elements[i] >= before.to_float_elements[i] + n as u64);
        }
        let json = stats_json();
        assert!(json.contains("\"int4_opt_v1\":{\"slot\":null"), "{json}");
        assert!(
            !json.contains("ggml_q4_0"),
            "ggml's own types are not registered: {json}"
        );
    }

    #[test]
    fn without_a_patched_ggml_registration_says_so() {
        // The test binary has no ggml in it.
        let err = register_all(PluginMode::Fast, false, true).unwrap_err();
        assert_eq!(
            err,
            RegisterError::GgmlNotFound {
                symbol: "ggml_ext_type_register"
            }
        );
        assert!(err.to_string().contains("extension-type patch"));
        assert_eq!(hct_ggml_register_all(), -1);
    }
}

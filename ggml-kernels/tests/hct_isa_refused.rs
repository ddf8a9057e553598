//! An `HCT_ISA` this CPU cannot run falls back to detection (with a warning on stderr)
//! instead of crashing. Its own test binary, because the choice is made once per process.

use hct::platform::{active, Isa};

#[test]
fn an_isa_of_another_architecture_falls_back_to_detection() {
    let foreign = if cfg!(target_arch = "aarch64") {
        "avx2"
    } else {
        "neon"
    };
    std::env::set_var("HCT_ISA", foreign);
    let isa = active().isa();
    assert_eq!(isa, Isa::detect());
    assert_ne!(isa.name(), foreign);
}

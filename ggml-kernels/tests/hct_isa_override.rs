//! `HCT_ISA` is read once per process, so this check lives in its own test binary with a
//! single test: nothing can have chosen the backend before it sets the variable.

use hct::platform::{active, Isa};

#[test]
fn hct_isa_selects_the_backend_once_per_process() {
    std::env::set_var("HCT_ISA", "scalar");
    assert_eq!(active().isa(), Isa::Scalar);
    std::env::set_var("HCT_ISA", "auto");
    assert_eq!(
        active().isa(),
        Isa::Scalar,
        "the choice is cached for the process"
    );
}

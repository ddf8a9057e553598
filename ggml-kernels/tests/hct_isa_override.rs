//! `HCT_ISA` is read once per process, so this check lives in its own test binary with a
//! single test: nothing can have chosen the backend before it sets the variable.

use hct::platform::{active, Backend, Isa};
use hct::traits::{all_traits, all_traits_of};

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
    // The registered entry points are the scalar ones: the table is chosen with the ISA.
    for (t, scalar) in all_traits().iter().zip(all_traits_of(Backend::scalar())) {
        assert_eq!(
            t.vec_dot as usize, scalar.vec_dot as usize,
            "{}",
            t.codec_id
        );
        assert_eq!(
            t.to_float as usize, scalar.to_float as usize,
            "{}",
            t.codec_id
        );
    }
}

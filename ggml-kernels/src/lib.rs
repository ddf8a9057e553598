//! libhct: kernels and the C ABI. See ../README.md.

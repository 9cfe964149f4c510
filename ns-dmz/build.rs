//! Links ns-dmz without a C library or its start files: `_start` is in src/main.rs, and the
//! program is a static, non-PIE executable, so the kernel maps it and jumps in with nothing to
//! relocate. (The code is compiled position-independent, which links fine into a non-PIE file.)

fn main() {
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

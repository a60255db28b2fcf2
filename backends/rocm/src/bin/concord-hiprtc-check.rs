//! `concord-hiprtc-check <gfx target>`: compiles every Concord kernel program with hiprtc for
//! that target and prints one JSON line per op (`{"op", "ok", "message"}`), or
//! `{"unavailable": reason}` (exit 3) / `{"invalid": message}` (exit 2).
//!
//! `concord_backend_rocm::check_kernels_isolated` runs it as a child process, so a hiprtc that
//! aborts on an unknown target (ROCm 5.2 on gfx940/942/1100) kills only this process.
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [arch] = args.as_slice() else {
        eprintln!("usage: concord-hiprtc-check <gfx target, e.g. gfx90a>");
        std::process::exit(2);
    };
    let code = concord_backend_rocm::helper_protocol::run(arch, &mut std::io::stdout().lock());
    std::process::exit(code);
}

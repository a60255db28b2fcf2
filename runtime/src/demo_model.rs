//! Where the bundled demo model is, found at run time so an installed or copied binary finds
//! it too (a build-time path alone breaks as soon as the binary leaves the checkout).

use std::path::{Path, PathBuf};

/// The environment variable naming the demo model's directory explicitly.
pub const DEMO_MODEL_ENV: &str = "CONCORD_DEMO_MODEL";

/// The bundled demo model's directory, the first of:
/// 1. `$CONCORD_DEMO_MODEL`, when set (returned even if it is not a model directory, so the
///    caller's error names the path the user gave);
/// 2. `models/demo` beside the running executable or in one of its first four ancestors
///    (`target/release/concord` in a checkout), or `share/concord/models/demo` under them
///    (an installed prefix);
/// 3. the checkout this crate was built from;
/// 4. `models/demo` relative to the working directory.
///
/// Paths that exist are canonicalised, so messages show `/…/models/demo`, not `cli/../`.
pub fn demo_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DEMO_MODEL_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let near_exe = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors().skip(1).take(5).find_map(|base| {
            [
                base.join("models/demo"),
                base.join("share/concord/models/demo"),
            ]
            .into_iter()
            .find(|d| is_model_dir(d))
        })
    });
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo");
    let dir = near_exe
        .or_else(|| is_model_dir(&built_in).then_some(built_in))
        .unwrap_or_else(|| PathBuf::from("models/demo"));
    dir.canonicalize().unwrap_or(dir)
}

fn is_model_dir(dir: &Path) -> bool {
    dir.join("config.json").is_file()
}

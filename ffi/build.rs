//! Gives the shared library an ABI name carrying the major version, so programs linked
//! against one major version never load another: `libconcord.so.0` (ELF `DT_SONAME`), or
//! `@rpath/libconcord.0.dylib` (Mach-O install name). ffi/install.sh installs
//! `libconcord.so.X.Y.Z` with the `libconcord.so.X` and `libconcord.so` links beside it.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".to_string());
    let family = env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    match (family.as_str(), os.as_str()) {
        (_, "macos" | "ios") => println!(
            "cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libconcord.{major}.dylib"
        ),
        ("unix", _) => println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libconcord.so.{major}"),
        // Windows DLLs carry no such name.
        _ => {}
    }
}

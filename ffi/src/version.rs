//! The library's version as preprocessor constants in the header (`CONCORD_VERSION_MAJOR`, …),
//! so a C program can check at compile time which API it builds against;
//! `concord_version()` gives the version of the library actually loaded. The major version is
//! also the shared library's SONAME (`libconcord.so.0`, ffi/build.rs).

/// Major version: a change here is an incompatible ABI change (a new SONAME).
pub const CONCORD_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const CONCORD_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const CONCORD_VERSION_PATCH: u32 = 0;

#[cfg(test)]
mod tests {
    use super::*;

    /// cbindgen writes only literals into the header, so the constants are spelled out; this
    /// keeps them equal to the crate's version.
    #[test]
    fn constants_are_the_crate_version() {
        let parts = [
            (CONCORD_VERSION_MAJOR, env!("CARGO_PKG_VERSION_MAJOR")),
            (CONCORD_VERSION_MINOR, env!("CARGO_PKG_VERSION_MINOR")),
            (CONCORD_VERSION_PATCH, env!("CARGO_PKG_VERSION_PATCH")),
        ];
        for (constant, cargo) in parts {
            assert_eq!(constant.to_string(), cargo);
        }
    }
}

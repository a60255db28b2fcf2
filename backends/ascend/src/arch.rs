//! The `--npu-arch` aclrtc compiles for, chosen from the SoC name `aclrtGetSocName` reports.
//!
//! | SoC name (prefix)                  | products                         | `--npu-arch` |
//! |------------------------------------|----------------------------------|--------------|
//! | `Ascend910B`, `Ascend910_93`       | Atlas A2 (910B1–B4), A3 (910C)   | `dav-2201`   |
//! | `Ascend310P`                       | Atlas 300I/V Pro (310P)          | `dav-2002`   |
//! | `Ascend310B`                       | Atlas 200I/500 A2 (310B)         | `dav-3002`   |
//! | `Ascend910A`, `Ascend910Pro`, `Ascend910Premium` | Atlas 800 (first 910) | `dav-1001`   |
//!
//! Any other name is refused with the name in the message; `CONCORD_ASCEND_ARCH` overrides
//! the choice.

/// Every architecture this crate knows, for messages and `--arch` checks.
pub const KNOWN_ARCHS: [&str; 4] = ["dav-2201", "dav-2002", "dav-3002", "dav-1001"];

/// The `--npu-arch` for SoC `soc`, or `None` for a SoC this table does not know.
pub fn npu_arch(soc: &str) -> Option<&'static str> {
    const TABLE: [(&str, &str); 6] = [
        ("Ascend910B", "dav-2201"),
        ("Ascend910_93", "dav-2201"),
        ("Ascend310P", "dav-2002"),
        ("Ascend310B", "dav-3002"),
        ("Ascend910Pro", "dav-1001"),
        ("Ascend910Premium", "dav-1001"),
    ];
    TABLE
        .iter()
        .find(|(prefix, _)| soc.starts_with(prefix))
        .map(|&(_, arch)| arch)
        .or_else(|| (soc == "Ascend910A" || soc == "Ascend910").then_some("dav-1001"))
}

/// Whether `arch` is one of [`KNOWN_ARCHS`].
pub fn known(arch: &str) -> bool {
    KNOWN_ARCHS.contains(&arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a2_and_a3_socs_compile_for_dav_2201() {
        for soc in [
            "Ascend910B1",
            "Ascend910B2C",
            "Ascend910B3",
            "Ascend910B4",
            "Ascend910_9391",
        ] {
            assert_eq!(npu_arch(soc), Some("dav-2201"), "{soc}");
        }
        assert_eq!(npu_arch("Ascend310P3"), Some("dav-2002"));
        assert_eq!(npu_arch("Ascend310B1"), Some("dav-3002"));
        assert_eq!(npu_arch("Ascend910A"), Some("dav-1001"));
        assert_eq!(npu_arch("Ascend910ProB"), Some("dav-1001"));
    }

    #[test]
    fn unknown_socs_are_refused() {
        assert_eq!(npu_arch("Ascend910"), Some("dav-1001"));
        assert_eq!(npu_arch("Ascend950PR"), None);
        assert_eq!(npu_arch(""), None);
        assert!(known("dav-2201") && !known("dav-9999"));
    }
}

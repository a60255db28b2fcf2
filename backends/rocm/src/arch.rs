//! The device's gfx target, found in the raw bytes `hipGetDeviceProperties` wrote.
//!
//! `hipDeviceProp_t` changed layout between ROCm 5.x and 6.x (`hipDeviceProp_tR0600`), so
//! no struct is declared here: the `gcnArchName` field is found as the first NUL-terminated
//! string that reads `gfx`, a digit, and the rest of a target name with optional features
//! (`gfx90a:sramecc+:xnack-`).

use crate::hiprtc::valid_arch;

/// The longest `gcnArchName` (the field is `char[256]`).
const MAX_NAME: usize = 256;

/// The full gfx target name with its features (`gfx90a:sramecc+:xnack-`), or `None` when the
/// bytes hold none.
pub fn gcn_arch_name(props: &[u8]) -> Option<String> {
    (0..props.len()).find_map(|start| {
        let rest = &props[start..];
        if !(rest.starts_with(b"gfx") && rest.get(3).is_some_and(u8::is_ascii_digit)) {
            return None;
        }
        let end = rest.iter().take(MAX_NAME).position(|&b| b == 0)?;
        let name = std::str::from_utf8(&rest[..end]).ok()?;
        valid_arch(name).then(|| name.to_string())
    })
}

/// The target name without its features: `gfx90a:sramecc+:xnack-` → `gfx90a`.
pub fn target_of(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zeroed properties buffer with `name` at 0 and `arch` at `at`.
    fn props(name: &[u8], arch: &[u8], at: usize) -> Vec<u8> {
        let mut b = vec![0u8; 16 * 1024];
        b[..name.len()].copy_from_slice(name);
        // A non-zero int just before the field, as `gcnArch` is in the ROCm 5.x layout.
        b[at - 4..at].copy_from_slice(&910i32.to_le_bytes());
        b[at..at + arch.len()].copy_from_slice(arch);
        b
    }

    #[test]
    fn finds_the_arch_name_in_either_layout() {
        let b = props(b"AMD Instinct MI210", b"gfx90a:sramecc+:xnack-", 396);
        let name = gcn_arch_name(&b).unwrap();
        assert_eq!(name, "gfx90a:sramecc+:xnack-");
        assert_eq!(target_of(&name), "gfx90a");
        let b = props(b"AMD Radeon RX 6900 XT", b"gfx1030", 1160);
        assert_eq!(gcn_arch_name(&b).as_deref(), Some("gfx1030"));
        assert_eq!(target_of("gfx1030"), "gfx1030");
        let b = props(b"", b"gfx942:sramecc+:xnack-", 8);
        assert_eq!(gcn_arch_name(&b).as_deref(), Some("gfx942:sramecc+:xnack-"));
    }

    #[test]
    fn skips_what_is_not_a_target_name() {
        // `gfx` without a digit, a name cut by a space, then the real field.
        let mut b = props(b"gfxcard gfx9 thing", b"gfx908:xnack-", 512);
        assert_eq!(gcn_arch_name(&b).as_deref(), Some("gfx908:xnack-"));
        // Malformed features are not a target name.
        b = props(b"", b"gfx908:xnack", 512);
        assert_eq!(gcn_arch_name(&b), None);
    }

    #[test]
    fn none_without_a_name() {
        assert_eq!(gcn_arch_name(&[]), None);
        assert_eq!(gcn_arch_name(&[0u8; 16 * 1024]), None);
        assert_eq!(gcn_arch_name(&props(b"Device 740f", b"", 400)), None);
        // Not NUL-terminated at the end of the buffer.
        assert_eq!(gcn_arch_name(b"gfx90a"), None);
        // Longer than the field.
        let mut long = b"gfx90a".to_vec();
        long.extend(std::iter::repeat_n(b'a', 300));
        long.push(0);
        assert_eq!(gcn_arch_name(&long), None);
    }
}

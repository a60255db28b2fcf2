//! The explicit parameters of every kernel of a code object, read from its metadata note
//! (AMDGPU-Usage, "Code Object V3+ Metadata": a MessagePack map whose `amdhsa.kernels` array
//! gives each kernel's `.name` and `.args`, each arg with `.size` and `.value_kind`).
//!
//! `hipModuleLaunchKernel` copies each `kernelParams` entry with the size the metadata
//! states and checks nothing, so a launch is checked against this list first: the HIP
//! counterpart of the OpenCL backend's kernel-argument-info check.

use std::collections::HashMap;
use std::fmt;

use rmpv::Value;

use crate::elf;

/// What one explicit kernel parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A global buffer (`const u8 *`, `u32 *`, …): an 8-byte device address.
    Pointer,
    /// A 4-byte value (`u32`, `float`).
    Value4,
    /// An 8-byte value (`u64`).
    Value8,
    /// Anything else (a value of another size, an image, a pipe, …): never launched.
    Other,
}

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamKind::Pointer => "a global buffer",
            ParamKind::Value4 => "a 4-byte value (u32 or f32)",
            ParamKind::Value8 => "an 8-byte value (u64)",
            ParamKind::Other => "of a kind this backend does not pass",
        })
    }
}

/// The explicit parameters of each kernel of the code object `code`, by kernel name. Hidden
/// parameters (`hidden_*`, filled in by the runtime) are left out.
pub fn kernel_params(code: &[u8]) -> Result<HashMap<String, Vec<ParamKind>>, String> {
    let note = elf::amdgpu_metadata(code)
        .ok_or("no NT_AMDGPU_METADATA note (not a code object v3 or later)")?;
    from_metadata(note)
}

/// [`kernel_params`] from the metadata note's MessagePack bytes.
fn from_metadata(note: &[u8]) -> Result<HashMap<String, Vec<ParamKind>>, String> {
    let root = rmpv::decode::read_value(&mut &note[..])
        .map_err(|e| format!("the metadata is not valid MessagePack: {e}"))?;
    let kernels = get(&root, "amdhsa.kernels")
        .and_then(Value::as_array)
        .ok_or("the metadata has no amdhsa.kernels array")?;
    let mut out = HashMap::new();
    for k in kernels {
        let name = get(k, ".name")
            .and_then(Value::as_str)
            .ok_or("a kernel without .name")?;
        let args = match get(k, ".args") {
            None => &[][..],
            Some(a) => a
                .as_array()
                .ok_or_else(|| format!("kernel {name}: .args is not an array"))?,
        };
        let mut params = Vec::with_capacity(args.len());
        for (i, arg) in args.iter().enumerate() {
            let kind = get(arg, ".value_kind")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("kernel {name}: argument {i} has no .value_kind"))?;
            if kind.starts_with("hidden_") {
                continue;
            }
            let size = get(arg, ".size")
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("kernel {name}: argument {i} has no .size"))?;
            params.push(match (kind, size) {
                ("global_buffer", 8) => ParamKind::Pointer,
                ("by_value", 4) => ParamKind::Value4,
                ("by_value", 8) => ParamKind::Value8,
                _ => ParamKind::Other,
            });
        }
        out.insert(name.to_string(), params);
    }
    Ok(out)
}

/// The value under string key `key` of a map.
fn get<'v>(map: &'v Value, key: &str) -> Option<&'v Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MessagePack of a string.
    fn s(text: &str) -> Vec<u8> {
        let mut v = vec![0xa0 | text.len() as u8];
        v.extend_from_slice(text.as_bytes());
        v
    }

    #[test]
    fn kernel_args_are_classified() {
        // {"amdhsa.kernels": [{".name": "k", ".args": [ptr, u32, u64, hidden]}]}
        let arg = |kind: &str, size: u8| {
            let mut v = vec![0x82];
            v.extend(s(".size"));
            v.push(size);
            v.extend(s(".value_kind"));
            v.extend(s(kind));
            v
        };
        let mut m = vec![0x81];
        m.extend(s("amdhsa.kernels"));
        m.push(0x91);
        m.push(0x82);
        m.extend(s(".name"));
        m.extend(s("k"));
        m.extend(s(".args"));
        m.push(0x95);
        m.extend(arg("global_buffer", 8));
        m.extend(arg("by_value", 4));
        m.extend(arg("by_value", 8));
        m.extend(arg("by_value", 2));
        m.extend(arg("hidden_block_count_x", 4));
        let params = from_metadata(&m).expect("valid metadata");
        assert_eq!(
            params.get("k").map(Vec::as_slice),
            Some(
                &[
                    ParamKind::Pointer,
                    ParamKind::Value4,
                    ParamKind::Value8,
                    ParamKind::Other
                ][..]
            )
        );
        assert!(kernel_params(&m).is_err(), "not an ELF");
        assert!(from_metadata(&[0x80]).is_err(), "no amdhsa.kernels");
        assert!(from_metadata(&[0xa3, b'a']).is_err(), "cut short");
    }

    /// Every kernel of every program compiled by the installed hiprtc has its parameters in
    /// the metadata, each a global buffer or a 4- or 8-byte value. Skipped without hiprtc.
    #[test]
    fn hiprtc_code_objects_describe_every_kernel() {
        let Ok(rtc) = crate::hiprtc::load() else {
            println!("SKIP: hiprtc not available");
            return;
        };
        for &op in concord_ops::OpKind::ALL {
            let code = match crate::hiprtc::compile_checked(
                &rtc,
                concord_kernels::Program::of(op, concord_ops::KernelMode::Fast),
                "gfx90a",
            ) {
                Ok(code) => code,
                Err(e) => panic!("{op}: {e}"),
            };
            let params = kernel_params(&code).unwrap_or_else(|e| panic!("{op}: {e}"));
            for name in concord_kernels::kernel_names(op) {
                let p = params
                    .get(*name)
                    .unwrap_or_else(|| panic!("{op}: no metadata for {name}"));
                assert!(!p.is_empty(), "{name}");
                assert!(!p.contains(&ParamKind::Other), "{name}: {p:?}");
            }
        }
    }
}

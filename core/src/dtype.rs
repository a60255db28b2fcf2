use serde::{Deserialize, Serialize};

/// Element types, spelled as safetensors spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16: the top 16 bits of an f32.
    BF16,
    /// OCP float8 e4m3fn: bias 7, no infinities, NaN only at 0x7F/0xFF, max 448.
    F8E4M3,
    /// OCP float8 e5m2: bias 15, IEEE-like with infinities, max 57344.
    F8E5M2,
    /// Signed 32-bit integer (token ids, positions).
    I32,
    /// Unsigned 32-bit integer (expert ids, token ids).
    U32,
    /// Signed 64-bit integer.
    I64,
    /// Raw bytes.
    U8,
}

impl DType {
    /// Bytes per element.
    pub const fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::F8E4M3 | DType::F8E5M2 | DType::U8 => 1,
            DType::I64 => 8,
        }
    }

    /// The name safetensors uses (`F8_E4M3`, `BF16`, …).
    pub const fn safetensors_name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::F8E4M3 => "F8_E4M3",
            DType::F8E5M2 => "F8_E5M2",
            DType::I32 => "I32",
            DType::U32 => "U32",
            DType::I64 => "I64",
            DType::U8 => "U8",
        }
    }

    /// Parses a safetensors dtype name; `None` for types Concord does not handle.
    pub fn from_safetensors_name(name: &str) -> Option<DType> {
        Some(match name {
            "F32" => DType::F32,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "F8_E4M3" => DType::F8E4M3,
            "F8_E5M2" => DType::F8E5M2,
            "I32" => DType::I32,
            "U32" => DType::U32,
            "I64" => DType::I64,
            "U8" => DType::U8,
            _ => return None,
        })
    }

    /// True for the floating-point formats.
    pub const fn is_float(self) -> bool {
        matches!(
            self,
            DType::F32 | DType::F16 | DType::BF16 | DType::F8E4M3 | DType::F8E5M2
        )
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.safetensors_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_names_round_trip() {
        for d in [
            DType::F32,
            DType::F16,
            DType::BF16,
            DType::F8E4M3,
            DType::F8E5M2,
            DType::I32,
            DType::U32,
            DType::I64,
            DType::U8,
        ] {
            assert_eq!(DType::from_safetensors_name(d.safetensors_name()), Some(d));
        }
        assert_eq!(DType::from_safetensors_name("F8_E4M3FNUZ"), None);
    }
}

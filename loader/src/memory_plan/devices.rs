//! The memory on offer: `--devices 8x141GiB` and `--host-memory 1TiB`.

use std::str::FromStr;

use bytesize::ByteSize;
use concord_core::{Error, Result};

/// `COUNTxSIZE`: how many devices, and the memory of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Devices {
    /// Number of devices (one rank each).
    pub count: usize,
    /// Memory of one device in bytes.
    pub bytes_each: u64,
}

/// Parses a byte size such as `141GiB`, `192GB` or `1TiB` (binary units with `i`, decimal
/// without), naming `what` in the error.
pub fn parse_size(text: &str, what: &str) -> Result<u64> {
    // A bare number is almost surely a forgotten unit (`8x141`), not 141 bytes.
    if text.trim().bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(Error::invalid(format!(
            "{what}: {text:?} has no unit; write e.g. {}GiB or {}GB",
            text.trim(),
            text.trim()
        )));
    }
    let bytes = ByteSize::from_str(text.trim())
        .map_err(|e| {
            Error::invalid(format!(
                "{what}: cannot read {text:?} as a size such as 141GiB, 192GB or 1TiB ({e})"
            ))
        })?
        .as_u64();
    if bytes == 0 {
        return Err(Error::invalid(format!(
            "{what}: {text:?} is zero bytes; give the memory each holds, e.g. 141GiB"
        )));
    }
    Ok(bytes)
}

impl FromStr for Devices {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let (count, size) = text.split_once(['x', 'X', '×']).ok_or_else(|| {
            Error::invalid(format!(
                "--devices: expected COUNTxSIZE such as 8x141GiB, got {text:?}"
            ))
        })?;
        let count: usize = count.trim().parse().map_err(|_| {
            Error::invalid(format!(
                "--devices: the count {count:?} in {text:?} is not a whole number (expected e.g. 8x141GiB)"
            ))
        })?;
        if count == 0 {
            return Err(Error::invalid(format!(
                "--devices: {text:?} names zero devices; at least one is needed"
            )));
        }
        let bytes_each = parse_size(size, "--devices")?;
        Ok(Devices { count, bytes_each })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_and_binary_or_decimal_sizes() {
        let d: Devices = "8x141GiB".parse().unwrap();
        assert_eq!(d.count, 8);
        assert_eq!(d.bytes_each, 141 * 1024 * 1024 * 1024);
        let d: Devices = "16x64GB".parse().unwrap();
        assert_eq!((d.count, d.bytes_each), (16, 64_000_000_000));
        assert_eq!(parse_size("1TiB", "--host-memory").unwrap(), 1 << 40);
    }

    #[test]
    fn bad_device_specs_name_the_flag() {
        for bad in [
            "8",
            "8x141",
            "0x141GiB",
            "eightx141GiB",
            "8x",
            "8xlots",
            "8x0GiB",
        ] {
            let e = bad.parse::<Devices>().unwrap_err().to_string();
            assert!(e.contains("--devices"), "{bad}: {e}");
        }
    }
}

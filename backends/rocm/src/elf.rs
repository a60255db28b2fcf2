//! Just enough of an AMDGPU code object (ELF64, little-endian) to read a kernel descriptor:
//! the symbol `<kernel>.kd` and the `compute_pgm_rsrc1` word in it, whose FLOAT_DENORM_MODE_32
//! field says whether the hardware flushes f32 subnormals (AMDGPU-Usage, "Kernel Descriptor").

/// `compute_pgm_rsrc1`'s byte offset inside the 64-byte kernel descriptor.
const RSRC1_OFFSET: usize = 48;
/// FLOAT_DENORM_MODE_32 value "no flush of inputs or outputs".
pub const DENORM_PRESERVE: u32 = 3;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?)).ok()
}

struct Section {
    kind: u32,
    addr: usize,
    offset: usize,
    size: usize,
    link: usize,
}

fn sections(elf: &[u8]) -> Option<Vec<Section>> {
    if elf.get(..4)? != b"\x7fELF" || elf.get(4)? != &2 || elf.get(5)? != &1 {
        return None;
    }
    let shoff = u64_at(elf, 0x28)?;
    let shentsize = usize::from(u16_at(elf, 0x3A)?);
    let shnum = usize::from(u16_at(elf, 0x3C)?);
    (0..shnum)
        .map(|i| {
            let h = shoff.checked_add(i.checked_mul(shentsize)?)?;
            Some(Section {
                kind: u32_at(elf, h + 4)?,
                addr: u64_at(elf, h + 16)?,
                offset: u64_at(elf, h + 24)?,
                size: u64_at(elf, h + 32)?,
                link: usize::try_from(u32_at(elf, h + 40)?).ok()?,
            })
        })
        .collect()
}

fn c_str(b: &[u8], at: usize) -> Option<&[u8]> {
    let rest = b.get(at..)?;
    Some(&rest[..rest.iter().position(|&c| c == 0)?])
}

/// FLOAT_DENORM_MODE_32 (bits 17:16 of `compute_pgm_rsrc1`) of the kernel `name` in the code
/// object `elf`, or `None` when the object holds no descriptor `name.kd`.
pub fn f32_denorm_mode(elf: &[u8], name: &str) -> Option<u32> {
    let wanted = format!("{name}.kd");
    let secs = sections(elf)?;
    // SHT_SYMTAB = 2, SHT_DYNSYM = 11.
    for symtab in secs.iter().filter(|s| s.kind == 2 || s.kind == 11) {
        let strtab = secs.get(symtab.link)?;
        let strings = elf.get(strtab.offset..strtab.offset.checked_add(strtab.size)?)?;
        for i in 0..symtab.size / 24 {
            let sym = symtab.offset.checked_add(i * 24)?;
            let name_at = usize::try_from(u32_at(elf, sym)?).ok()?;
            if c_str(strings, name_at)? != wanted.as_bytes() {
                continue;
            }
            let section = secs.get(usize::from(u16_at(elf, sym + 6)?))?;
            let value = u64_at(elf, sym + 8)?;
            let at = section
                .offset
                .checked_add(value.checked_sub(section.addr)?)?
                .checked_add(RSRC1_OFFSET)?;
            return Some((u32_at(elf, at)? >> 16) & 3);
        }
    }
    None
}

/// `NT_AMDGPU_METADATA`: the note holding the code object's metadata (MessagePack, code
/// object v3 and later).
const NT_AMDGPU_METADATA: u32 = 32;

/// The description of the `AMDGPU` note of type `NT_AMDGPU_METADATA` in the code object `elf`
/// (AMDGPU-Usage, "Code Object Metadata"), or `None` when it has none.
pub fn amdgpu_metadata(elf: &[u8]) -> Option<&[u8]> {
    let secs = sections(elf)?;
    // SHT_NOTE = 7.
    for note in secs.iter().filter(|s| s.kind == 7) {
        let body = elf.get(note.offset..note.offset.checked_add(note.size)?)?;
        let mut at = 0usize;
        while at.checked_add(12)? <= body.len() {
            let name_size = usize::try_from(u32_at(body, at)?).ok()?;
            let desc_size = usize::try_from(u32_at(body, at + 4)?).ok()?;
            let kind = u32_at(body, at + 8)?;
            let name_at = at + 12;
            let desc_at = name_at.checked_add(name_size.checked_next_multiple_of(4)?)?;
            let name = body.get(name_at..name_at.checked_add(name_size)?)?;
            let desc = body.get(desc_at..desc_at.checked_add(desc_size)?)?;
            if kind == NT_AMDGPU_METADATA && name.strip_suffix(b"\0").unwrap_or(name) == b"AMDGPU" {
                return Some(desc);
            }
            at = desc_at.checked_add(desc_size.checked_next_multiple_of(4)?)?;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn malformed_objects_yield_none() {
        assert_eq!(super::f32_denorm_mode(b"", "k"), None);
        assert_eq!(super::f32_denorm_mode(b"\x7fELF\x02\x01", "k"), None);
        assert_eq!(super::f32_denorm_mode(&[0u8; 128], "k"), None);
        assert_eq!(super::amdgpu_metadata(b""), None);
        assert_eq!(super::amdgpu_metadata(&[0u8; 128]), None);
    }
}

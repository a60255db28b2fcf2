//! The Ascend program of one op: the shared source assembled for
//! [`concord_kernels::Target::Ascend`], each `KERNEL` turned into a per-item function, and one
//! `ENTRY` per kernel that spreads the 1-D range over block index and block dim
//! (prelude/ascend.h explains the mapping).
//!
//! The entry points are generated from each kernel's own parameter list, parsed here, so the
//! host packs exactly the parameters the source declares plus one trailing `u64` item count.
use concord_core::{Error, Result};
use concord_kernels::{Program, Target};
use concord_ops::KernelMode;

/// One scalar or pointer parameter of an entry point, as the launch packs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A `GLOBAL` pointer: 8 bytes.
    Pointer,
    /// `u64`: 8 bytes.
    U64,
    /// `u32` or `i32`: 4 bytes.
    U32,
    /// `float`: 4 bytes.
    F32,
}

impl ParamKind {
    /// Bytes the parameter takes in the packed argument block (also its alignment).
    pub fn size(self) -> usize {
        match self {
            ParamKind::Pointer | ParamKind::U64 => 8,
            ParamKind::U32 | ParamKind::F32 => 4,
        }
    }
    /// One letter per parameter in the CPU mapping's signature string (`p`, `q`, `u`, `f`).
    fn letter(self) -> char {
        match self {
            ParamKind::Pointer => 'p',
            ParamKind::U64 => 'q',
            ParamKind::U32 => 'u',
            ParamKind::F32 => 'f',
        }
    }
}

/// One declared parameter: its C declaration, its name and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The declaration as written for the entry point (`GLOBAL const u8 *x_buf`).
    pub decl: String,
    /// The parameter's name.
    pub name: String,
    /// How it is packed.
    pub kind: ParamKind,
}

/// The name of the trailing parameter every entry point takes: the number of items.
pub const ITEMS_PARAM: &str = "concord_items";

/// The complete Ascend source of `program` with its entry points. Only exact programs exist
/// on Ascend (the fast tiles need work-group barriers).
pub fn program_source(program: Program) -> Result<String> {
    if program.mode != KernelMode::Exact {
        return Err(Error::unsupported(format!(
            "ascend: {} is a fast-mode program; the Ascend backend runs exact kernels only",
            program.name()
        )));
    }
    let mut source = program.source(Target::Ascend);
    let mut entries = String::from("#line 1 \"backends/ascend/src/source.rs (entry points)\"\n");
    for name in program.kernel_names() {
        let params = kernel_params(&source, name)?;
        let head = format!("KERNEL {name}(");
        source = source.replacen(&head, &format!("KERNEL {name}__item(u64 concord_item, "), 1);
        entries.push_str(&entry_point(name, &params));
    }
    source.push_str(&entries);
    Ok(source)
}

/// The parameters kernel `name` declares in `source` (`IN_TENSOR(x)` and `OUT_TENSOR(x)`
/// expanded to their buffer and offset), without the trailing item count.
pub fn kernel_params(source: &str, name: &str) -> Result<Vec<Param>> {
    let head = format!("KERNEL {name}(");
    let missing = || Error::invalid(format!("ascend: no `{head}` in the program source"));
    let start = source.find(&head).ok_or_else(missing)? + head.len();
    if source[start..].contains(&head) {
        return Err(Error::invalid(format!(
            "ascend: kernel {name} is defined twice"
        )));
    }
    let mut depth = 0usize;
    let mut pieces = Vec::new();
    let mut piece = String::new();
    for c in source[start..].chars() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => {
                pieces.push(std::mem::take(&mut piece));
                return pieces.iter().try_fold(Vec::new(), |mut all, p| {
                    all.extend(parse_param(name, p)?);
                    Ok(all)
                });
            }
            ')' => depth -= 1,
            ',' if depth == 0 => {
                pieces.push(std::mem::take(&mut piece));
                continue;
            }
            _ => {}
        }
        piece.push(c);
    }
    Err(Error::invalid(format!(
        "ascend: kernel {name}'s parameter list is not closed"
    )))
}

/// One written parameter: a tensor macro gives two.
fn parse_param(kernel: &str, text: &str) -> Result<Vec<Param>> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for (mac, constness) in [("IN_TENSOR(", "const "), ("OUT_TENSOR(", "")] {
        if let Some(rest) = text.strip_prefix(mac) {
            let t = rest.trim_end_matches(')').trim();
            return Ok(vec![
                Param {
                    decl: format!("GLOBAL {constness}u8 *{t}_buf"),
                    name: format!("{t}_buf"),
                    kind: ParamKind::Pointer,
                },
                Param {
                    decl: format!("u64 {t}_off"),
                    name: format!("{t}_off"),
                    kind: ParamKind::U64,
                },
            ]);
        }
    }
    let name: String = text
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let ty = text[..text.len() - name.len()].trim();
    let kind = if ty.contains('*') {
        ParamKind::Pointer
    } else {
        match ty {
            "u64" => ParamKind::U64,
            "u32" | "i32" => ParamKind::U32,
            "float" => ParamKind::F32,
            other => {
                return Err(Error::invalid(format!(
                    "ascend: kernel {kernel}: parameter `{text}` has a type ({other}) the \
                     launch cannot pack"
                )))
            }
        }
    };
    if name.is_empty() {
        return Err(Error::invalid(format!(
            "ascend: kernel {kernel}: parameter `{text}` has no name"
        )));
    }
    Ok(vec![Param {
        decl: text.clone(),
        name,
        kind,
    }])
}

/// The entry point of kernel `name`: the item loop, then (CPU mapping only) its signature
/// string and the trampoline the stand-in calls with the packed argument block.
fn entry_point(name: &str, params: &[Param]) -> String {
    let decls: Vec<&str> = params.iter().map(|p| p.decl.as_str()).collect();
    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    let mut out = format!(
        "ENTRY {name}({}, u64 {ITEMS_PARAM}) {{\n    \
         for (u64 item = BLOCK_IDX(); item < {ITEMS_PARAM}; item += BLOCK_NUM()) {{\n        \
         {name}__item(item, {});\n    }}\n}}\n",
        decls.join(", "),
        names.join(", ")
    );
    let signature: String = params
        .iter()
        .map(|p| p.kind)
        .chain([ParamKind::U64])
        .map(ParamKind::letter)
        .collect();
    out.push_str("#ifdef CONCORD_ASCEND_CPU\n");
    out.push_str(&format!(
        "const char {name}__concord_signature[] = \"{signature}\";\n"
    ));
    out.push_str(&format!(
        "void {name}__concord_cpu(const unsigned char *args, u32 block_idx, u32 block_num) {{\n"
    ));
    out.push_str("    concord_block_idx = block_idx;\n    concord_block_num = block_num;\n");
    let mut offset = 0usize;
    let mut call = Vec::new();
    let unpacked = params
        .iter()
        .map(|p| (p.decl.clone(), p.kind))
        .chain([(format!("u64 {ITEMS_PARAM}"), ParamKind::U64)]);
    for (i, (decl, kind)) in unpacked.enumerate() {
        offset = offset.next_multiple_of(kind.size());
        let local = format!("a{i}");
        let name_len = decl
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .count();
        let ty = &decl[..decl.len() - name_len];
        out.push_str(&format!(
            "    {ty}{local};\n    __builtin_memcpy(&{local}, args + {offset}, {});\n",
            kind.size()
        ));
        call.push(local);
        offset += kind.size();
    }
    out.push_str(&format!("    {name}({});\n}}\n#endif\n", call.join(", ")));
    out
}

/// Byte offsets of `kinds` packed one after another, each aligned to its size: the layout
/// the launch's argument block has.
pub fn packed_offsets(kinds: impl IntoIterator<Item = ParamKind>) -> (Vec<usize>, usize) {
    let mut offset = 0usize;
    let offsets = kinds
        .into_iter()
        .map(|k| {
            offset = offset.next_multiple_of(k.size());
            let at = offset;
            offset += k.size();
            at
        })
        .collect();
    (offsets, offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_ops::OpKind;

    #[test]
    fn tensor_macros_expand_to_buffer_and_offset() {
        let src = "KERNEL add(IN_TENSOR(a), u32 a_dt, GLOBAL float *r, OUT_TENSOR(out), u64 n, \
                   float eps) {";
        let params = kernel_params(src, "add").unwrap();
        let kinds: Vec<ParamKind> = params.iter().map(|p| p.kind).collect();
        use ParamKind::*;
        assert_eq!(kinds, [Pointer, U64, U32, Pointer, Pointer, U64, U64, F32]);
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["a_buf", "a_off", "a_dt", "r", "out_buf", "out_off", "n", "eps"]
        );
        assert_eq!(params[0].decl, "GLOBAL const u8 *a_buf");
        assert_eq!(params[4].decl, "GLOBAL u8 *out_buf");
    }

    #[test]
    fn every_exact_program_gets_one_entry_per_kernel() {
        for &op in OpKind::ALL {
            let program = Program::of(op, KernelMode::Exact);
            let src = program_source(program).unwrap();
            for name in program.kernel_names() {
                assert!(src.contains(&format!("ENTRY {name}(")), "{op}: {name}");
                assert!(src.contains(&format!("KERNEL {name}__item(u64 concord_item, ")));
                assert!(!src.contains(&format!("KERNEL {name}(")), "{op}: {name}");
            }
        }
        let fast = Program::of(OpKind::Matmul, KernelMode::Fast);
        assert!(program_source(fast).is_err());
    }

    #[test]
    fn packing_aligns_each_parameter_to_its_size() {
        use ParamKind::*;
        // u32 at 0, pointer aligned up to 8, u32 at 16, f32 at 20, u64 at 24.
        let (offsets, total) = packed_offsets([U32, Pointer, U32, F32, U64]);
        assert_eq!(offsets, [0, 8, 16, 20, 24]);
        assert_eq!(total, 32);
    }
}

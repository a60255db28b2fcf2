//! `include/concord.h` is what cbindgen generates from the sources with `cbindgen.toml`.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("ffi/cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = crate_dir.join("include/concord.h");
    if std::env::var_os("CONCORD_UPDATE_HEADER").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write include/concord.h");
        return;
    }
    let current = std::fs::read(&path).unwrap_or_default();
    if current != generated {
        let (current, generated) = (
            String::from_utf8_lossy(&current),
            String::from_utf8_lossy(&generated),
        );
        let first_difference = current
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}:\n  checked in: {a}\n  generated:  {b}", i + 1))
            .unwrap_or_else(|| "one is a prefix of the other".to_owned());
        panic!(
            "{} is out of date with ffi/src ({first_difference}); regenerate it with\n    \
             CONCORD_UPDATE_HEADER=1 cargo test -p concord-ffi header\nand commit the result",
            path.display()
        );
    }
}

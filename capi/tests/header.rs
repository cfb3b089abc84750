//! `include/ustack.h` is what cbindgen generates from the crate: fails when
//! the committed header is stale. `USTACK_BLESS=1` rewrites it.

use std::path::Path;

#[test]
fn header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    let path = dir.join("include/ustack.h");
    if std::env::var_os("USTACK_BLESS").is_some() {
        std::fs::write(&path, &out).expect("write ustack.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == out,
        "capi/include/ustack.h is stale: run USTACK_BLESS=1 cargo test -p ustack-capi --test header"
    );
}

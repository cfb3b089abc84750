//! Replays every committed fuzz corpus through its target on stable Rust, so
//! inputs that once found bugs keep being checked by `cargo test`.

use std::path::Path;

#[test]
fn fuzz_corpora_replay_without_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut total = 0;
    for (name, target) in sim::fuzz::TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()));
        let mut count = 0;
        for entry in entries {
            let path = entry.expect("readable corpus entry").path();
            let data = std::fs::read(&path).expect("readable corpus file");
            let result = std::panic::catch_unwind(|| target(&data));
            assert!(result.is_ok(), "{name}: {} panics", path.display());
            count += 1;
        }
        assert!(count > 0, "corpus {name} is empty");
        total += count;
    }
    eprintln!("replayed {total} corpus inputs");
}

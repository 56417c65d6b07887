//! Every input of every fuzz target's corpus, run through its target on stable Rust: the seeds,
//! and each input a fuzzer found to crash Hygie once, kept so that it never does again.

use std::path::Path;

#[test]
fn every_corpus_input_passes_its_target() {
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, target) in hygie_fuzz::TARGETS {
        let corpus = corpora.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&corpus)
            .unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{name} has no corpus");
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{} fails {name}", input.display());
        }
    }
}

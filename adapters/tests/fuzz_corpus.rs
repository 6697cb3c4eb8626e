//! Replays the fuzz corpora (seeded from the samples) and every named regression through the
//! property the fuzz targets check, on the stable toolchain, in `make test`.

use std::path::{Path, PathBuf};

use jxg_adapters::fuzzing::round_trip;

const TARGETS: [(&str, &str); 4] = [
    ("police_json", "police-json"),
    ("court_xml", "court-xml"),
    ("prosecution_flat", "prosecution-flat"),
    ("canonical", "canonical"),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file());
    out.sort();
    out
}

#[test]
fn every_corpus_file_and_regression_keeps_the_round_trip() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for (target, format) in TARGETS {
        let corpus = files(&fuzz.join("corpus").join(target));
        assert!(
            corpus.len() >= 2,
            "{target}: the committed corpus is missing ({} files)",
            corpus.len()
        );
        let mut whole = 0;
        for f in corpus
            .iter()
            .chain(&files(&fuzz.join("regressions").join(target)))
        {
            let bytes = std::fs::read(f).unwrap();
            let name = f.display().to_string();
            match std::panic::catch_unwind(|| round_trip(format, &bytes)) {
                Ok(true) => whole += 1,
                Ok(false) => {}
                Err(_) => panic!("{name} breaks the {format} round trip"),
            }
        }
        // the valid samples in the corpus go the whole way round, so the check is not vacuous
        assert!(whole >= 2, "{target}: only {whole} corpus files decoded");
    }
}

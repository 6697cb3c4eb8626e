//! The property every fuzz target checks (`fuzz/fuzz_targets/`) and the corpus and regression
//! tests replay (`adapters/tests/fuzz_corpus.rs`): no input makes a decoder panic, and a document
//! that decodes and passes the semantic rules encodes; that encoding decodes and passes them again;
//! and encoding it once more gives the same bytes (one round reaches a fixed point).

use std::sync::OnceLock;

use jxg_schema::{Document, MasterData, validate};

use crate::registry::{self, Context};

fn master_data() -> &'static MasterData {
    static MD: OnceLock<MasterData> = OnceLock::new();
    MD.get_or_init(MasterData::embedded)
}

/// Checks the round trip of `bytes` through the adapter of `format`; panics (with the stage,
/// never the content) when the property does not hold. True when `bytes` decoded and passed the
/// rules, so that the whole round trip ran.
pub fn round_trip(format: &str, bytes: &[u8]) -> bool {
    let md = master_data();
    let ctx = Context { master_data: md };
    let adapter = registry::get(format).expect("a known format");
    let first = match adapter.decode_document(bytes, &ctx) {
        Ok(Document::Message(m)) => m,
        // a format that reads withdrawals and writes none (canonical v1 reads v2) stops here
        Ok(Document::Withdrawal(_)) if !adapter.carries_corrections() => return false,
        Ok(Document::Withdrawal(w)) => {
            let once = adapter
                .encode_withdrawal(&w, &ctx)
                .unwrap_or_else(|e| panic!("{format}: a decoded withdrawal does not encode: {e}"));
            let second = match adapter.decode_document(&once, &ctx) {
                Ok(Document::Withdrawal(w)) => w,
                other => panic!("{format}: its own withdrawal does not decode as one: {other:?}"),
            };
            let twice = adapter
                .encode_withdrawal(&second, &ctx)
                .unwrap_or_else(|e| panic!("{format}: the second encode fails: {e}"));
            assert!(
                once == twice,
                "{format}: encode → decode → encode of a withdrawal is not stable"
            );
            return true;
        }
        Err(_) => return false,
    };
    if !validate::semantic(&first, md).is_empty() {
        return false;
    }
    let once = match adapter.encode(&first, &ctx) {
        Ok(b) => b,
        Err(e) => panic!("{format}: a valid decoded document does not encode: {e}"),
    };
    let second = match adapter.decode(&once, &ctx) {
        Ok(m) => m,
        Err(e) => panic!(
            "{format}: its own encoding does not decode: {:?}",
            e.rejection
        ),
    };
    let violations = validate::semantic(&second, md);
    assert!(
        violations.is_empty(),
        "{format}: its own encoding breaks the semantic rules: {violations:?}"
    );
    let twice = adapter
        .encode(&second, &ctx)
        .unwrap_or_else(|e| panic!("{format}: the second encode fails: {e}"));
    assert!(
        once == twice,
        "{format}: encode → decode → encode is not stable"
    );
    true
}

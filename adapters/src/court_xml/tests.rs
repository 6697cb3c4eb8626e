use std::path::PathBuf;
use std::process::Command;

use jxg_schema::message::*;
use jxg_schema::{MasterData, Message};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::{decode, encode, tree};
use crate::testgen::*;
use crate::{Context, Rejection};

fn xsd() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/legacy/court-xml-2.xsd")
}

/// Validates documents with xmllint (libxml2), an implementation independent of ours.
fn xmllint_validates(docs: &[(String, Vec<u8>)]) {
    let dir = tempfile_dir();
    let mut files = Vec::new();
    for (i, (_, bytes)) in docs.iter().enumerate() {
        let p = dir.join(format!("doc-{i}.xml"));
        std::fs::write(&p, bytes).unwrap();
        files.push(p);
    }
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(xsd())
        .args(&files)
        .output()
        .expect("xmllint (Debian's libxml2-utils) is installed; make test installs it");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "xmllint refused a document:\n{stderr}\n{:?}",
        docs.iter().map(|d| &d.0).collect::<Vec<_>>()
    );
    assert_eq!(stderr.matches(" validates").count(), docs.len(), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "jxg-xsd-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn inbound_samples_decode_to_their_canonical_messages() {
    assert_decodes_to_samples(
        decode,
        "courts",
        &[
            (
                "court/valid/dom-1-latin1.xml",
                "canonical/valid/verdict.issued.json",
            ),
            (
                "court/valid/dom-2-utf8.xml",
                "canonical/valid/verdict.issued-suspended.json",
            ),
            (
                "court/valid/kendelse-varetaegt-1.xml",
                "canonical/valid/remand.ordered.json",
            ),
            (
                "court/valid/retsmoede-grundlovsforhoer-1.xml",
                "canonical/valid/hearing.scheduled.json",
            ),
        ],
    );
}

#[test]
fn the_day_fines_verdict_without_cpr_decodes_as_the_sample_states() {
    let md = md();
    let m = decode(
        &read("court/valid/dom-3-dagboeder.xml"),
        &Context { master_data: &md },
    )
    .unwrap();
    let Body::VerdictIssued(v) = &m.body else {
        panic!("{m:?}")
    };
    assert!(v.defendant.cpr.is_none());
    assert_eq!(v.defendant.birth_date.unwrap().to_string(), "1998-05-17");
    assert_eq!(v.sentence.kind, SentenceKind::DayFines);
    let df = v.sentence.day_fines.as_ref().unwrap();
    assert_eq!((df.count, df.rate.minor), (10, 20000));
    assert_eq!(v.decided_at.to_string(), "2026-08-12T08:45:00Z");
    assert_eq!(m.correlation_id, "1471-34120-00061-26");
    assert!(
        !v.sentence.must_be_enforced(),
        "day fines alone never go to the prison"
    );
}

#[test]
fn outbound_samples_are_what_the_canonical_messages_encode_to_and_validate() {
    let md = md();
    let ctx = Context { master_data: &md };
    let mut emitted = Vec::new();
    for (canonical, court) in [
        (
            "canonical/valid/indictment.filed.json",
            "court/valid/anklageskrift-1.xml",
        ),
        (
            "canonical/valid/person.arrested.json",
            "court/valid/anholdelse-1.xml",
        ),
        (
            "canonical/valid/charges.withdrawn.json",
            "court/valid/tiltalefrafald-1.xml",
        ),
    ] {
        let m: Message =
            serde_json::from_value(without_protected_addresses(json(canonical))).unwrap();
        let out = encode(&m, &md).unwrap();
        let ours = decode(&out, &ctx)
            .unwrap_or_else(|e| panic!("{canonical}: {e}\n{}", String::from_utf8_lossy(&out)));
        let theirs = decode(&read(court), &ctx).unwrap();
        assert_eq!(ours.body, theirs.body, "{court}");
        assert_eq!(ours.case, theirs.case, "{court}");
        assert_eq!(
            ours.source_document_id, theirs.source_document_id,
            "{court}"
        );
        assert_eq!(
            tree::parse(&out)
                .unwrap()
                .children
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>(),
            tree::parse(&read(court))
                .unwrap()
                .children
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>(),
            "{court}: element order"
        );
        emitted.push((court.to_string(), out));
    }
    // every canonical sample the courts' format can carry, in either direction
    for name in [
        "verdict.issued.json",
        "verdict.issued-suspended.json",
        "remand.ordered.json",
        "hearing.scheduled.json",
    ] {
        let m: Message = serde_json::from_value(json(&format!("canonical/valid/{name}"))).unwrap();
        emitted.push((name.to_string(), encode(&m, &md).unwrap()));
    }
    xmllint_validates(&emitted);
    // and the samples themselves (the XSD describes the whole format)
    let valid: Vec<(String, Vec<u8>)> = std::fs::read_dir(sample_path("court/valid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    assert_eq!(valid.len(), 8);
    xmllint_validates(&valid);
}

#[test]
fn every_invalid_sample_gets_its_status_and_names_its_defect() {
    let md = md();
    let ctx = Context { master_data: &md };
    let manifest = json("court/invalid/manifest.json");
    let entries = manifest.as_array().unwrap();
    assert_eq!(entries.len(), 24);
    for e in entries {
        let file = e["file"].as_str().unwrap();
        let status = e["status"].as_u64().unwrap();
        let must = e["must_name"].as_str().unwrap();
        let r = decode(&read(&format!("court/invalid/{file}")), &ctx);
        if file == "charset-mismatch.xml" {
            // the defect is in the request's Content-Type: the document itself is valid
            assert!(r.is_ok(), "{file}: {r:?}");
            continue;
        }
        let err = r.expect_err(file);
        let text = err.to_string();
        match (status, &err.rejection) {
            (400, Rejection::Malformed { message }) => {
                let key = must.split(" (").next().unwrap().to_lowercase();
                assert!(message.to_lowercase().contains(&key), "{file}: {message}");
                if let Some(detail) = must.split(" (").nth(1) {
                    let detail = detail.trim_end_matches(')');
                    assert!(
                        message.contains(detail),
                        "{file}: want {detail} in {message}"
                    );
                }
            }
            (415, Rejection::Encoding { message }) => {
                assert!(message.contains("UTF-16"), "{file}: {message}")
            }
            (422, Rejection::Invalid(v)) => {
                let path = must.split(' ').next().unwrap();
                assert!(
                    v.iter().any(|x| x.path == path),
                    "{file}: want {path}, got {v}"
                );
                let root = path.split('/').nth(1).unwrap();
                assert!(
                    v.iter().all(|x| x.path.starts_with(&format!("/{root}"))),
                    "{file}: {v}"
                );
            }
            other => panic!("{file}: expected {status}, got {other:?}"),
        }
        assert!(!text.contains("root:x:0:0"), "{file}: {text}");
        for secret in ["0104909995", "Jens Peter", "Blågårdsgade"] {
            assert!(!text.contains(secret), "{file}: {text}");
        }
    }
}

#[test]
fn hostile_documents_are_refused_while_streaming() {
    let head = r#"<?xml version="1.0"?>"#;
    let ns = super::NAMESPACE;
    // billion laughs, full size: refused at the DOCTYPE, nothing expanded
    let mut laughs = String::from("<!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        laughs.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    laughs.push_str("]>");
    let doc = format!("{head}\n{laughs}\n<Dom xmlns=\"{ns}\">&lol9;</Dom>");
    let e = tree::parse(doc.as_bytes()).unwrap_err();
    assert!(
        matches!(&e, tree::FrameError::Malformed(m) if m.contains("DOCTYPE")),
        "{e:?}"
    );
    // quadratic blowup: one big entity referenced many times
    let big = "x".repeat(50_000);
    let refs = "&a;".repeat(50_000);
    let doc = format!("{head}<!DOCTYPE d [<!ENTITY a \"{big}\">]><Dom xmlns=\"{ns}\">{refs}</Dom>");
    assert!(
        matches!(tree::parse(doc.as_bytes()), Err(tree::FrameError::Malformed(m)) if m.contains("DOCTYPE"))
    );
    // an undeclared entity reference without a DOCTYPE
    let doc = format!("{head}<Dom xmlns=\"{ns}\">&passwd;</Dom>");
    assert!(
        matches!(tree::parse(doc.as_bytes()), Err(tree::FrameError::Malformed(m)) if m.contains("&passwd;"))
    );
    // deep nesting: 100,000 levels are refused at level 33 without building them
    let doc = format!("{head}{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
    assert!(
        matches!(tree::parse(doc.as_bytes()), Err(tree::FrameError::Malformed(m)) if m.contains("nesting depth"))
    );
    let ok = format!("{head}{}{}", "<a>".repeat(32), "</a>".repeat(32));
    assert!(tree::parse(ok.as_bytes()).is_ok(), "32 levels are allowed");
    let over = format!("{head}{}{}", "<a>".repeat(33), "</a>".repeat(33));
    assert!(tree::parse(over.as_bytes()).is_err(), "33 levels are not");
    // too many elements
    let doc = format!("{head}<r>{}</r>", "<e/>".repeat(tree::MAX_ELEMENTS));
    assert!(
        matches!(tree::parse(doc.as_bytes()), Err(tree::FrameError::Malformed(m)) if m.contains("more than 10000 elements"))
    );
    let doc = format!("{head}<r>{}</r>", "<e/>".repeat(tree::MAX_ELEMENTS - 1));
    assert!(
        tree::parse(doc.as_bytes()).is_ok(),
        "10,000 elements with the root are allowed"
    );
    // a long attribute
    let doc = format!(
        "{head}<r a=\"{}\"/>",
        "x".repeat(tree::MAX_ATTRIBUTE_BYTES + 1)
    );
    assert!(
        matches!(tree::parse(doc.as_bytes()), Err(tree::FrameError::Malformed(m)) if m.contains("over 4096 bytes"))
    );
    let doc = format!("{head}<r a=\"{}\"/>", "x".repeat(tree::MAX_ATTRIBUTE_BYTES));
    assert!(tree::parse(doc.as_bytes()).is_ok());
    // processing instructions
    let doc = format!("{head}<?xml-stylesheet href=\"http://127.0.0.1:9/x\"?><r/>");
    assert!(
        matches!(tree::parse(doc.as_bytes()), Err(tree::FrameError::Malformed(m)) if m.contains("xml-stylesheet"))
    );
}

#[test]
fn encodings_are_decided_by_the_declaration_and_latin1_is_true_iso_8859_1() {
    assert_eq!(tree::declared_encoding(b"<r/>"), Ok(tree::Encoding::Utf8));
    assert_eq!(
        tree::declared_encoding(b"<?xml version='1.0' encoding='iso-8859-1'?><r/>"),
        Ok(tree::Encoding::Latin1)
    );
    assert!(matches!(
        tree::declared_encoding(b"<?xml version=\"1.0\" encoding=\"windows-1252\"?>"),
        Err(tree::FrameError::Encoding(_))
    ));
    // 0x80-0x9F are C1 controls in ISO-8859-1, not the euro sign of windows-1252
    assert_eq!(
        tree::latin1_to_string(&[0x80, 0xE6, 0xF8, 0xE5]),
        "\u{80}æøå"
    );
    let doc = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r>\xC6\xD8\xC5</r>";
    assert_eq!(tree::parse(doc).unwrap().text, "ÆØÅ");
    // any prefix, CDATA, character references
    let doc = "<?xml version=\"1.0\"?><d:r xmlns:d=\"urn:x\"><d:t><![CDATA[a<b]]>&#230;&#xF8;&amp;</d:t></d:r>";
    let r = tree::parse(doc.as_bytes()).unwrap();
    assert_eq!(
        (r.name.as_str(), r.namespace.as_deref()),
        ("r", Some("urn:x"))
    );
    assert_eq!(r.children[0].text, "a<bæø&");
}

#[test]
fn a_prefixed_latin1_verdict_decodes_like_the_plain_one() {
    let md = md();
    let ctx = Context { master_data: &md };
    let plain = read("court/valid/dom-1-latin1.xml");
    let text = tree::latin1_to_string(&plain);
    let prefixed = text
        .replace(
            "<Dom xmlns=\"urn:dk:domstol:straffesag:2\"",
            "<d:Dom xmlns:d=\"urn:dk:domstol:straffesag:2\"",
        )
        .replace("</Dom>", "</d:Dom>");
    let prefixed = prefixed
        .replace('<', "\u{1}")
        .replace("\u{1}?", "<?")
        .replace("\u{1}/", "</")
        .replace("\u{1}d:", "<d:")
        .replace('\u{1}', "<d:");
    let prefixed = prefixed.replace("</", "</d:").replace("</d:d:", "</d:");
    let bytes: Vec<u8> = prefixed
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    let a = decode(&plain, &ctx).unwrap();
    let b = decode(&bytes, &ctx).unwrap_or_else(|e| panic!("{e}\n{prefixed}"));
    assert_eq!(a, b);
}

fn court_message(body: Body, case: CaseRefs, md: &MasterData) -> Message {
    let mut case = case;
    let mut body = body;
    // the court case number's suffix names the court of the message
    let court = match &body {
        Body::VerdictIssued(b) => Some(b.court.clone()),
        Body::RemandOrdered(b) => Some(b.court.clone()),
        Body::HearingScheduled(b) => Some(b.hearing.court.clone()),
        Body::IndictmentFiled(b) => Some(b.court.clone()),
        Body::ChargesWithdrawn(b) => b.court.clone(),
        _ => None,
    };
    if let (Some(c), Some(_)) = (&court, &case.court_case) {
        case.court_case = Some(format!("SS-1234/2026-{c}").parse().unwrap());
    }
    if let Body::PersonArrested(b) = &mut body {
        let j = case.police_journal.as_ref().unwrap();
        b.police_district = md.district_by_code(j.district_code()).unwrap().slug.clone();
    }
    let occurred = match &body {
        Body::VerdictIssued(b) => b.decided_at,
        Body::RemandOrdered(b) => b.custody.at,
        Body::HearingScheduled(b) => b.hearing.starts_at,
        Body::IndictmentFiled(b) => b.filed_at,
        Body::ChargesWithdrawn(b) => b.withdrawn_at,
        Body::PersonArrested(b) => b.custody.at,
        _ => unreachable!(),
    };
    Message {
        id: Some(uuid::Uuid::now_v7()),
        sender: Some("prosecution".into()),
        source_document_id: "X-1".into(),
        occurred_at: occurred,
        received_at: None,
        purpose: body.message_type().default_purpose(),
        classification: Classification::Confidential,
        correlation_id: case.correlation_id().unwrap(),
        case,
        replaces: None,
        body,
    }
}

fn court_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        police_body().prop_filter("a type court-xml carries", |b| !matches!(
            b,
            Body::CustodyAdmitted(_) | Body::CustodyReleased(_)
        )),
        arrest_body(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn canonical_to_court_xml_and_back_is_the_identity(body in court_body(), case in case()) {
        let md = md();
        let m = court_message(body, case, &md);
        let bytes = encode(&m, &md).unwrap();
        let back = decode(&bytes, &Context { master_data: &md })
            .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&bytes)));
        prop_assert_eq!(&back.body, &m.body);
        prop_assert_eq!(&back.case, &m.case);
        prop_assert_eq!(back.occurred_at, m.occurred_at);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let md = md();
        let _ = decode(&bytes, &Context { master_data: &md });
    }

    #[test]
    fn decode_never_panics_on_damaged_samples(pos in 0usize..2500, byte in any::<u8>(), which in 0usize..8) {
        let files = ["dom-1-latin1.xml", "dom-2-utf8.xml", "dom-3-dagboeder.xml", "kendelse-varetaegt-1.xml",
                     "retsmoede-grundlovsforhoer-1.xml", "anklageskrift-1.xml", "anholdelse-1.xml", "tiltalefrafald-1.xml"];
        let mut bytes = read(&format!("court/valid/{}", files[which]));
        let pos = pos % bytes.len();
        bytes[pos] = byte;
        let md = md();
        let _ = decode(&bytes, &Context { master_data: &md });
    }
}

#[test]
fn emitted_documents_of_generated_messages_validate_against_the_xsd() {
    let md = md();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (court_body(), case());
    let mut docs = Vec::new();
    for i in 0..60 {
        let (body, case) = strategy.new_tree(&mut runner).unwrap().current();
        let m = court_message(body, case, &md);
        docs.push((format!("generated-{i}"), encode(&m, &md).unwrap()));
    }
    xmllint_validates(&docs);
}

#[test]
fn whatever_the_format_does_not_define_is_named_at_every_place_it_stands() {
    let md = md();
    let ctx = Context { master_data: &md };
    let story = String::from_utf8(read("court/invalid/count-nr-1000.xml"))
        .unwrap()
        .replace("nr=\"1000\"", "nr=\"2\"");
    assert!(
        decode(story.as_bytes(), &ctx).is_ok(),
        "the base document is valid"
    );
    let doc = story
        .replacen("version=\"2.3\"", "version=\"2.3\" sprog=\"da\"", 1)
        .replacen("<Tiltalte>", "<Tiltalte><![CDATA[en tiltalt]]>", 1)
        .replacen(
            "<Efternavn>Hansen</Efternavn>",
            "<Efternavn>Hansen</Efternavn><Mellemnavn>P</Mellemnavn>",
            1,
        )
        .replacen(
            "<Varighed enhed=\"måneder\">6</Varighed>",
            "<Varighed enhed=\"måneder\">6</Varighed><Varighed enhed=\"dage\">3</Varighed>",
            1,
        )
        .replacen("<Ankefrist>", "<Ankefrist><Dato/>", 1);
    let err = decode(doc.as_bytes(), &ctx).expect_err("five undefined things");
    let Rejection::Invalid(v) = &err.rejection else {
        panic!("{err:?}")
    };
    let got: Vec<&str> = v.iter().map(|x| x.path.as_str()).collect();
    for want in [
        "/Dom/@sprog",
        "/Dom/Tiltalte/text()",
        "/Dom/Tiltalte/Person/Navn/Mellemnavn",
        "/Dom/Straf/Varighed[2]",
        "/Dom/Ankefrist/Dato",
    ] {
        assert!(got.contains(&want), "want {want} in {v}");
    }
    assert!(!v.to_string().contains("en tiltalt"), "{v}");
}

fn invalid_paths(e: crate::DecodeError) -> Vec<String> {
    let Rejection::Invalid(v) = e.rejection else {
        panic!("{e:?}")
    };
    let mut p: Vec<String> = v.iter().map(|x| x.path.clone()).collect();
    p.sort();
    p
}

#[test]
fn a_correction_carries_rettelse_out_by_canonical_id_valid_against_the_xsd_and_in_by_the_court_id()
{
    let md = md();
    let ctx = Context { master_data: &md };
    let replaced = uuid::Uuid::parse_str("019ecb4d-3be8-7d9e-a3c1-0dcd6a9487b8").unwrap();
    let mut m: Message =
        serde_json::from_slice(&read("canonical/valid/indictment.filed.json")).unwrap();
    m.replaces = Some(Replaces {
        message_id: Some(replaced),
        source_document_id: Some("ANK-2026-0001".into()),
        reason: CorrectionReason::WrongPerson,
    });
    let out = encode(&m, &md).unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.contains(&format!(
            "<Rettelse erstatter=\"{replaced}\" årsag=\"forkert-person\"/>"
        )),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&read("canonical/v2/message.withdrawn.json")).unwrap();
    let Ok(jxg_schema::Document::Withdrawal(w)) = jxg_schema::Document::from_value(v) else {
        panic!("the sample is a withdrawal")
    };
    let withdrawal = super::encode_withdrawal(&w, &md).unwrap();
    xmllint_validates(&[
        ("correction".into(), out.clone()),
        ("withdrawal".into(), withdrawal.clone()),
    ]);

    let dom = String::from_utf8(read("court/valid/dom-2-utf8.xml")).unwrap();
    let corrected = dom.replacen(
        "</Sag>",
        "</Sag>\n  <Rettelse erstatter=\"DOM-2026-000417\" årsag=\"ændret-afgørelse\"/>",
        1,
    );
    let got = decode(corrected.as_bytes(), &ctx).unwrap();
    let r = got.replaces.expect("a correction");
    assert_eq!(r.source_document_id.as_deref(), Some("DOM-2026-000417"));
    assert_eq!(r.reason, CorrectionReason::DecisionChanged);
    for (rettelse, path) in [
        (
            "<Rettelse årsag=\"skrivefejl\"/>",
            "/Dom/Rettelse/@erstatter",
        ),
        (
            "<Rettelse erstatter=\"D-1\" årsag=\"fordi\"/>",
            "/Dom/Rettelse/@årsag",
        ),
        (
            "<Rettelse erstatter=\"D-1\" årsag=\"skrivefejl\" note=\"x\"/>",
            "/Dom/Rettelse/@note",
        ),
        (
            "<Rettelse erstatter=\"D-1\" årsag=\"skrivefejl\">tekst</Rettelse>",
            "/Dom/Rettelse/text()",
        ),
    ] {
        let doc = dom.replacen("</Sag>", &format!("</Sag>{rettelse}"), 1);
        assert_eq!(
            invalid_paths(decode(doc.as_bytes(), &ctx).unwrap_err()),
            [path]
        );
    }
}

#[test]
fn a_withdrawal_is_a_tilbagekaldelse_both_ways() {
    let md = md();
    let ctx = Context { master_data: &md };
    let v: serde_json::Value =
        serde_json::from_slice(&read("canonical/v2/message.withdrawn.json")).unwrap();
    let Ok(jxg_schema::Document::Withdrawal(w)) = jxg_schema::Document::from_value(v) else {
        panic!("the sample is a withdrawal")
    };
    let out = String::from_utf8(super::encode_withdrawal(&w, &md).unwrap()).unwrap();
    assert!(out.contains("<Tilbagekaldelse "), "{out}");
    assert!(
        !out.contains("<Person"),
        "nothing of what it withdraws: {out}"
    );
    let back = out
        .replace(&w.id.unwrap().to_string(), "DOM-2026-000419")
        .replace(
            &w.withdrawn.message_id.unwrap().to_string(),
            "DOM-2026-000418",
        );
    let d = super::decode_document(back.as_bytes(), &ctx).unwrap();
    let jxg_schema::Document::Withdrawal(got) = d else {
        panic!("{d:?}")
    };
    assert_eq!(got.source_document_id, "DOM-2026-000419");
    assert_eq!(
        got.withdrawn.source_document_id.as_deref(),
        Some("DOM-2026-000418")
    );
    assert_eq!(got.withdrawn.reason, WithdrawalReason::SentInError);
    assert_eq!(got.case, w.case);
    assert_eq!(got.occurred_at, w.occurred_at);
    assert!(decode(back.as_bytes(), &ctx).is_err(), "not a message");

    let bad = back
        .replace("sendt-ved-fejl", "glemt")
        .replace("</Sag>", "</Sag><Ankefrist>2026-01-01</Ankefrist>");
    assert_eq!(
        invalid_paths(super::decode_document(bad.as_bytes(), &ctx).unwrap_err()),
        [
            "/Tilbagekaldelse/Ankefrist",
            "/Tilbagekaldelse/Tilbagekaldt/@årsag"
        ]
    );
}

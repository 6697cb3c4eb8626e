//! The content model of court-xml 2, as `schemas/legacy/court-xml-2.xsd` defines it: which
//! attributes each element may carry, which children it may hold and how often, and whether it
//! holds text. [`check`] walks a parsed document and names, by its XPath, everything the format
//! does not define — an unknown element or attribute, an attribute in another namespace, a child
//! repeated beyond its limit, text where only elements belong, an element where only text
//! belongs — so that nothing a court sends is silently left out of the canonical message.
//!
//! Order among siblings is not checked: the decoder reads children by name, so a document in
//! another order loses nothing. Values are checked by the decoder, not here.

use jxg_schema::Violations;

use super::tree::Element;
use super::{NAMESPACE, Root};

/// What an element may hold.
#[derive(Debug)]
enum Content {
    /// Text only (a simple type, or simple content with attributes).
    Text,
    /// Nothing: attributes only.
    Empty,
    /// These children, each once at most unless it `repeats`, and no text.
    Elements(&'static [Child]),
}

#[derive(Debug)]
struct Model {
    attributes: &'static [&'static str],
    content: Content,
}

#[derive(Debug)]
struct Child {
    name: &'static str,
    repeats: bool,
    model: &'static Model,
}

const fn once(name: &'static str, model: &'static Model) -> Child {
    Child {
        name,
        repeats: false,
        model,
    }
}

const fn many(name: &'static str, model: &'static Model) -> Child {
    Child {
        name,
        repeats: true,
        model,
    }
}

const fn text(attributes: &'static [&'static str]) -> Model {
    Model {
        attributes,
        content: Content::Text,
    }
}

const fn empty(attributes: &'static [&'static str]) -> Model {
    Model {
        attributes,
        content: Content::Empty,
    }
}

const TEXT: Model = text(&[]);

const SAG: Model = Model {
    attributes: &[],
    content: Content::Elements(&[
        once("Sagsnummer", &TEXT),
        once("Ret", &text(&["kode"])),
        once("PolitiJournalnummer", &TEXT),
        once("Anklagenummer", &TEXT),
    ]),
};

const NAVN: Model = Model {
    attributes: &[],
    content: Content::Elements(&[once("Fornavn", &TEXT), once("Efternavn", &TEXT)]),
};

const PERSON: Model = Model {
    attributes: &["cpr", "rolle"],
    content: Content::Elements(&[
        once("Navn", &NAVN),
        once("Fødselsdato", &TEXT),
        once("Adresse", &text(&["beskyttet"])),
    ]),
};

const FORHOLD: Model = Model {
    attributes: &["nr"],
    content: Content::Elements(&[
        once("Lovhenvisning", &empty(&["lov", "paragraf", "stk"])),
        once("Beskrivelse", &TEXT),
        once("Gerningstid", &empty(&["fra", "til"])),
        once("Gerningssted", &TEXT),
        once("Afgørelse", &TEXT),
    ]),
};

const DURATION: Model = text(&["enhed"]);

const STRAF: Model = Model {
    attributes: &["art", "betinget"],
    content: Content::Elements(&[
        once("Varighed", &DURATION),
        once("Prøvetid", &DURATION),
        many("Vilkår", &TEXT),
        once("Bøde", &text(&["valuta"])),
        once("Dagbøder", &empty(&["antal", "sats"])),
    ]),
};

const ROOT_ATTRIBUTES: &[&str] = &["version", "dokumentid"];

/// A correction: the document replaced and why.
const RETTELSE: Model = empty(&["erstatter", "årsag"]);

/// A withdrawal: the case, when, and the document withdrawn with why.
const TILBAGEKALDELSE: Model = Model {
    attributes: ROOT_ATTRIBUTES,
    content: Content::Elements(&[
        once("Sag", &SAG),
        once("Tidspunkt", &TEXT),
        once("Tilbagekaldt", &empty(&["dokumentid", "årsag"])),
    ]),
};

const DOM: Model = Model {
    attributes: ROOT_ATTRIBUTES,
    content: Content::Elements(&[
        once("Sag", &SAG),
        once("Rettelse", &RETTELSE),
        once("Afsagt", &TEXT),
        once(
            "Tiltalte",
            &Model {
                attributes: &[],
                content: Content::Elements(&[once("Person", &PERSON)]),
            },
        ),
        many("Forhold", &FORHOLD),
        once("Straf", &STRAF),
        once("Ankefrist", &TEXT),
    ]),
};

const KENDELSE: Model = Model {
    attributes: &["version", "dokumentid", "type"],
    content: Content::Elements(&[
        once("Sag", &SAG),
        once("Rettelse", &RETTELSE),
        once("Afsagt", &TEXT),
        once("Person", &PERSON),
        once("Varetægt", &empty(&["til", "isolation"])),
        once("Institution", &empty(&["kode"])),
    ]),
};

const RETSMOEDE: Model = Model {
    attributes: ROOT_ATTRIBUTES,
    content: Content::Elements(&[
        once("Sag", &SAG),
        once("Rettelse", &RETTELSE),
        once("Tidspunkt", &TEXT),
        once("Art", &TEXT),
        once("Lokale", &TEXT),
        many("Person", &PERSON),
        once("TiltaltFrihedsberøvet", &TEXT),
    ]),
};

const ANKLAGESKRIFT: Model = Model {
    attributes: ROOT_ATTRIBUTES,
    content: Content::Elements(&[
        once("Sag", &SAG),
        once("Rettelse", &RETTELSE),
        once("Indleveret", &TEXT),
        once(
            "Tiltalte",
            &Model {
                attributes: &[],
                content: Content::Elements(&[many("Person", &PERSON)]),
            },
        ),
        many("Forhold", &FORHOLD),
        once("Strafpåstand", &STRAF),
        once("Beskrivelse", &TEXT),
    ]),
};

const ANHOLDELSE: Model = Model {
    attributes: ROOT_ATTRIBUTES,
    content: Content::Elements(&[
        once("Sag", &SAG),
        once("Rettelse", &RETTELSE),
        once("Person", &PERSON),
        once("Anholdt", &empty(&["tidspunkt", "sted"])),
        once("Grundlovsforhør", &empty(&["frist"])),
        many("Forhold", &FORHOLD),
    ]),
};

const TILTALEFRAFALD: Model = Model {
    attributes: ROOT_ATTRIBUTES,
    content: Content::Elements(&[
        once("Sag", &SAG),
        once("Rettelse", &RETTELSE),
        once("Person", &PERSON),
        many("Forhold", &FORHOLD),
        once("Tilbagetaget", &TEXT),
        once("Begrundelse", &TEXT),
    ]),
};

fn root_model(root: Root) -> &'static Model {
    match root {
        Root::Dom => &DOM,
        Root::Kendelse => &KENDELSE,
        Root::Retsmoede => &RETSMOEDE,
        Root::Anklageskrift => &ANKLAGESKRIFT,
        Root::Anholdelse => &ANHOLDELSE,
        Root::Tiltalefrafald => &TILTALEFRAFALD,
    }
}

/// Names everything under `root` (a document of kind `kind`, whose own name and namespace the
/// caller has checked) that court-xml 2 does not define.
pub fn check(root: &Element, kind: Root, v: &mut Violations) {
    element(root, &format!("/{}", root.name), root_model(kind), v);
}

/// As [`check`], for a `Tilbagekaldelse`.
pub fn check_withdrawal(root: &Element, v: &mut Violations) {
    element(root, &format!("/{}", root.name), &TILBAGEKALDELSE, v);
}

fn element(el: &Element, path: &str, model: &Model, v: &mut Violations) {
    for (name, _) in &el.attributes {
        if !model.attributes.contains(&name.as_str()) {
            v.push(
                format!("{path}/@{name}"),
                format!("is not an attribute of {} in court-xml 2", el.name),
            );
        }
    }
    let children: &[Child] = match model.content {
        Content::Elements(children) => children,
        Content::Text | Content::Empty => &[],
    };
    let holds_text = matches!(model.content, Content::Text);
    if !holds_text && !el.text.trim().is_empty() {
        let what = match model.content {
            Content::Empty => "must be empty",
            _ => "holds elements only, not text",
        };
        v.push(format!("{path}/text()"), format!("{} {what}", el.name));
    }
    let mut seen: Vec<&str> = Vec::new();
    for c in &el.children {
        let p = child_path(el, path, c);
        if c.namespace.as_deref() != Some(NAMESPACE) {
            v.push(&p, format!("must be in namespace {NAMESPACE}"));
            continue;
        }
        let Some(def) = children.iter().find(|d| d.name == c.name) else {
            let what = match model.content {
                Content::Text => "holds text only, not elements",
                Content::Empty => "must be empty",
                Content::Elements(_) => "may not hold it in court-xml 2",
            };
            v.push(&p, format!("{} {what}", el.name));
            continue;
        };
        let again = seen.contains(&c.name.as_str());
        seen.push(&c.name);
        if again && !def.repeats {
            v.push(&p, format!("{} may hold only one {}", el.name, c.name));
            continue;
        }
        element(c, &p, def.model, v);
    }
}

/// A child's path: an index only where its name repeats among its siblings.
pub(super) fn child_path(parent: &Element, parent_path: &str, child: &Element) -> String {
    let mut same = parent.children_named(&child.name);
    let index = same.position(|c| std::ptr::eq(c, child)).unwrap_or(0) + 1;
    if index > 1 || same.next().is_some() {
        format!("{parent_path}/{}[{index}]", child.name)
    } else {
        format!("{parent_path}/{}", child.name)
    }
}

//! Framing for prosecution-flat: a cursor over 128-character ISO-8859-1 records that refuses a
//! wrong length, an unknown record type, records out of order, control bytes in text and a
//! trailer count that does not match — naming the record number and the field.

use jxg_schema::Violation;

/// The width of every record.
pub const WIDTH: usize = 128;

/// The record types, in the order they must appear.
pub const ORDER: &[&str] = &["HD", "RT", "TB", "PE", "FO", "SP", "RM", "FB", "TX", "TR"];

/// One record: its 1-based number, its type and its 128 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub no: usize,
    pub kind: &'static str,
    pub bytes: &'a [u8],
}

/// `record 3 (FO) field count no.`
pub fn path(no: usize, kind: &str, field: &str) -> String {
    format!("record {no} ({kind}) field {field}")
}

/// The named fields of each record type: (name, first position, last position), 1-based.
pub fn fields(kind: &str) -> &'static [(&'static str, usize, usize)] {
    match kind {
        "HD" => &[
            ("record type", 1, 2),
            ("message kind", 3, 6),
            ("prosecution case no.", 7, 26),
            ("police journal no.", 27, 45),
            ("court case no.", 46, 65),
            ("date", 66, 73),
            ("time", 74, 79),
            ("document id", 80, 119),
            ("filler", 120, 128),
        ],
        "RT" => &[
            ("record type", 1, 2),
            ("replaced document id", 3, 42),
            ("reason", 43, 46),
            ("filler", 47, 128),
        ],
        "TB" => &[
            ("record type", 1, 2),
            ("withdrawn document id", 3, 42),
            ("reason", 43, 46),
            ("filler", 47, 128),
        ],
        "PE" => &[
            ("record type", 1, 2),
            ("CPR", 3, 12),
            ("role", 13, 14),
            ("family name", 15, 49),
            ("given names", 50, 84),
            ("birth date", 85, 92),
            ("address protected", 93, 93),
            ("filler", 94, 128),
        ],
        "FO" => &[
            ("record type", 1, 2),
            ("count no.", 3, 5),
            ("law", 6, 9),
            ("section", 10, 15),
            ("subsection", 16, 17),
            ("description", 18, 77),
            ("date committed", 78, 85),
            ("outcome", 86, 86),
            ("place committed", 87, 126),
            ("filler", 127, 128),
        ],
        "SP" => &[
            ("record type", 1, 2),
            ("kind", 3, 6),
            ("suspended", 7, 7),
            ("duration", 8, 11),
            ("duration unit", 12, 12),
            ("probation", 13, 16),
            ("probation unit", 17, 17),
            ("amount", 18, 29),
            ("day-fine count", 30, 33),
            ("day-fine rate", 34, 45),
            ("conditions", 46, 85),
            ("appeal deadline", 86, 93),
            ("filler", 94, 128),
        ],
        "RM" => &[
            ("record type", 1, 2),
            ("court code", 3, 10),
            ("date", 11, 18),
            ("time", 19, 24),
            ("kind", 25, 28),
            ("room", 29, 38),
            ("defendant in custody", 39, 39),
            ("filler", 40, 128),
        ],
        "FB" => &[
            ("record type", 1, 2),
            ("event", 3, 5),
            ("date", 6, 13),
            ("time", 14, 19),
            ("institution", 20, 27),
            ("until", 28, 35),
            ("release reason", 36, 39),
            ("isolation", 40, 40),
            ("custody hearing requested", 41, 41),
            ("filler", 42, 128),
        ],
        "TX" => &[("record type", 1, 2), ("text", 3, 128)],
        "TR" => &[
            ("record type", 1, 2),
            ("number of records", 3, 8),
            ("filler", 9, 128),
        ],
        _ => &[],
    }
}

/// The field a position (1-based) falls in.
pub fn field_at(kind: &str, pos: usize) -> &'static str {
    fields(kind)
        .iter()
        .find(|(_, a, b)| (*a..=*b).contains(&pos))
        .map(|(n, _, _)| *n)
        .unwrap_or("record")
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7F || (0x80..=0x9F).contains(&b)
}

/// Splits a record set into checked records, or names the first layout fault.
pub fn split(bytes: &[u8]) -> Result<Vec<Record<'_>>, Violation> {
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(i) => {
                pieces.push(&rest[..i]);
                rest = &rest[i + 2..];
            }
            None => {
                pieces.push(rest);
                rest = &[];
            }
        }
    }
    if pieces.is_empty() {
        return Err(Violation::new(
            "record 1 field record type",
            "the record set is empty",
        ));
    }
    let mut records = Vec::with_capacity(pieces.len());
    let mut rank = 0usize;
    let last = pieces.len();
    for (i, p) in pieces.into_iter().enumerate() {
        let no = i + 1;
        let kind = ORDER
            .iter()
            .copied()
            .find(|k| p.len() >= 2 && p[..2] == *k.as_bytes());
        let shown = kind.map(str::to_string).unwrap_or_else(|| {
            p.get(..2)
                .map(|t| {
                    t.iter()
                        .map(|b| {
                            if b.is_ascii_alphanumeric() {
                                *b as char
                            } else {
                                '?'
                            }
                        })
                        .collect()
                })
                .unwrap_or_else(|| "?".into())
        });
        if p.len() != WIDTH {
            return Err(Violation::new(
                path(no, &shown, "record length"),
                format!("a record is {WIDTH} characters; this one is {}", p.len()),
            ));
        }
        let Some(kind) = kind else {
            return Err(Violation::new(
                path(no, &shown, "record type"),
                format!("{shown} is not a record type"),
            ));
        };
        if let Some(pos) = p.iter().position(|b| is_control(*b)) {
            return Err(Violation::new(
                path(no, kind, field_at(kind, pos + 1)),
                format!(
                    "byte 0x{:02X} at position {} is a control byte, not printable ISO-8859-1",
                    p[pos],
                    pos + 1
                ),
            ));
        }
        let r = ORDER
            .iter()
            .position(|k| *k == kind)
            .expect("kind is in ORDER");
        let out_of_order = (no == 1 && kind != "HD")
            || (no > 1 && kind == "HD")
            || (no < last && kind == "TR")
            || (no == last && kind != "TR")
            || r < rank
            || (r == rank && matches!(kind, "RT" | "TB" | "SP" | "RM" | "FB"));
        if out_of_order {
            let why = if no == 1 {
                "the first record must be HD".to_string()
            } else if no == last && kind != "TR" {
                "the last record must be the TR trailer".to_string()
            } else {
                format!("{kind} may not follow {}", ORDER[rank])
            };
            return Err(Violation::new(
                path(no, kind, "record type"),
                format!("records out of order: {why}"),
            ));
        }
        rank = r;
        records.push(Record { no, kind, bytes: p });
    }
    let tr = records.last().expect("at least one record");
    let count = &tr.bytes[2..8];
    let n: Option<usize> = std::str::from_utf8(count)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok());
    match n {
        Some(n) if n == records.len() => Ok(records),
        Some(n) => Err(Violation::new(
            path(tr.no, "TR", "number of records"),
            format!(
                "the trailer counts {n} records; the set has {}",
                records.len()
            ),
        )),
        None => Err(Violation::new(
            path(tr.no, "TR", "number of records"),
            "must be digits",
        )),
    }
}

impl Record<'_> {
    /// A field's bytes, by name.
    pub fn raw(&self, field: &str) -> &[u8] {
        let (_, a, b) = fields(self.kind)
            .iter()
            .find(|(n, _, _)| *n == field)
            .expect("a field of this record type");
        &self.bytes[a - 1..*b]
    }
    /// A field as text (true ISO-8859-1), trimmed; `None` when all spaces.
    pub fn text(&self, field: &str) -> Option<String> {
        let s: String = self.raw(field).iter().map(|b| char::from(*b)).collect();
        let t = s.trim();
        (!t.is_empty()).then(|| t.to_string())
    }
    pub fn path(&self, field: &str) -> String {
        path(self.no, self.kind, field)
    }
}

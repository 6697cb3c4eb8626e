//! The OpenAPI 3.1 descriptions of both listeners, served at `/openapi.json`; a test keeps them
//! true to the routes the app registers.

pub const AUTHORITY: &str = include_str!("../openapi/authority.json");
pub const ADMIN: &str = include_str!("../openapi/admin.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The paths a module registers with `web::resource("…")`.
    fn registered(source: &str) -> BTreeSet<String> {
        source
            .split("web::resource(\"")
            .skip(1)
            .map(|rest| rest.split('"').next().expect("a closing quote").to_string())
            .collect()
    }

    fn described(doc: &str) -> BTreeSet<String> {
        let v: serde_json::Value = serde_json::from_str(doc).expect("OpenAPI files are JSON");
        assert_eq!(v["openapi"], "3.1.0");
        v["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn every_registered_route_is_described_and_every_described_route_exists() {
        let authority = registered(include_str!("ingress/mod.rs"));
        assert!(authority.len() >= 7, "{authority:?}");
        assert_eq!(authority, described(super::AUTHORITY));
        assert_eq!(
            registered(include_str!("admin.rs")),
            described(super::ADMIN)
        );
    }
}

//! The domain knows no transport and no storage engine: none of their crates is among its
//! dependencies, direct or not (docs/ARCHITECTURE.md, "Which crate may depend on which").

use std::process::Command;

#[test]
fn the_core_depends_on_no_transport_and_no_storage_engine() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "jxg-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"jxg-core"), "{tree}");
    assert!(
        names.contains(&"cedar-policy"),
        "the tree is complete: {tree}"
    );
    for banned in [
        "actix-web",
        "actix-http",
        "actix-tls",
        "lapin",
        "reqwest",
        "hyper",
        "sled",
        "tokio-postgres",
        "postgres",
        "rustls",
    ] {
        assert!(
            !names.contains(&banned),
            "jxg-core depends on {banned}:\n{tree}"
        );
    }
}

//! The `jxg` command line (api.md, "Command line").

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use jxg_adapters::Context;
use jxg_adapters::canonical::Canonical;
use jxg_adapters::registry;
use jxg_schema::MasterData;

use crate::config::Config;
use crate::ingress::problem::Problem;

#[derive(Debug, Parser)]
#[command(name = "jxg", version, about = "jxg, the justice exchange gateway")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
    },
    /// Development certificates and keys.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Convert one document between formats, offline, by the gateway's own code path.
    Convert {
        /// police-json, canonical
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// The sender of canonical output (default: the source format's authority).
        #[arg(long)]
        sender: Option<String>,
        /// The document (default: standard input).
        file: Option<PathBuf>,
    },
    /// Check a canonical message (stored or submission form) against schema, master data and rules.
    Validate { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create the development CA, certificates and keys for the configured authorities.
    Init {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
        #[arg(long, default_value = "certs/dev")]
        dir: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

fn read_input(file: &Option<PathBuf>) -> Result<Vec<u8>, String> {
    match file {
        Some(f) => std::fs::read(f).map_err(|e| format!("{}: {e}", f.display())),
        None => {
            let mut v = Vec::new();
            std::io::stdin()
                .read_to_end(&mut v)
                .map_err(|e| e.to_string())?;
            Ok(v)
        }
    }
}

fn print_problem(p: Problem) -> i32 {
    eprintln!("{}", serde_json::to_string_pretty(&p.body()).expect("JSON"));
    1
}

/// `jxg convert`; returns the exit code.
pub fn convert(from: &str, to: &str, sender: Option<String>, file: &Option<PathBuf>) -> i32 {
    let (Some(src), Some(dst)) = (registry::get(from), registry::get(to)) else {
        eprintln!("jxg convert: formats are {}", registry::names().join(", "));
        return 2;
    };
    let bytes = match read_input(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("jxg convert: {e}");
            return 2;
        }
    };
    let md = MasterData::embedded();
    let mut m = match crate::pipeline::decode_document(src, &bytes, &md) {
        Ok(m) => m,
        Err(e) => return print_problem(Problem::from_rejection(e.rejection)),
    };
    if src.name() != "canonical" || sender.is_some() {
        m.sender = sender.or_else(|| src.native_authority().map(String::from));
    }
    match dst.encode(&m, &Context { master_data: &md }) {
        Ok(out) => {
            let text = if dst.name() == "canonical" {
                serde_json::to_vec_pretty(&m).expect("JSON")
            } else {
                out
            };
            use std::io::Write;
            let mut stdout = std::io::stdout();
            let _ = stdout
                .write_all(&text)
                .and_then(|_| stdout.write_all(b"\n"));
            0
        }
        Err(e) => print_problem(Problem::new(
            422,
            "cannot-carry",
            "Cannot convert",
            e.to_string(),
        )),
    }
}

/// `jxg validate`; returns the exit code.
pub fn validate(file: &Path) -> i32 {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("jxg validate: {}: {e}", file.display());
            return 2;
        }
    };
    let md = MasterData::embedded();
    match crate::pipeline::decode_document(&Canonical, &bytes, &md) {
        Ok(m) => {
            println!("valid: {} {}", m.message_type(), m.source_document_id);
            0
        }
        Err(e) => print_problem(Problem::from_rejection(e.rejection)),
    }
}

/// `jxg certs init`; returns the exit code.
pub fn certs_init(config: &Path, dir: &Path, force: bool) -> i32 {
    let c = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jxg certs init: {e}");
            return 1;
        }
    };
    let ids: Vec<String> = c.authorities.iter().map(|a| a.id.clone()).collect();
    match crate::certs::init(dir, &ids, force) {
        Ok(files) => {
            println!("wrote {} files to {}", files.len(), dir.display());
            0
        }
        Err(e) => {
            eprintln!("jxg certs init: {e}");
            1
        }
    }
}

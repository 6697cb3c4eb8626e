//! `jxg-tools`: what is used to try the gateway, apart from the product — the load generator
//! (`bench`, against the machine's own limit) and the simulator of the four authority systems
//! (`simulate`, against a running gateway). They start and drive the real `jxg` binary with
//! the test kit (`jxg-tests`) the end-to-end tests use.
#![forbid(unsafe_code)]

mod bench;
mod simulate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "jxg-tools",
    version,
    about = "The jxg gateway's load generator and simulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Play the four authority systems of the sample story against a running gateway, each with
    /// its own certificate and transport, verifying every signature they receive.
    Simulate {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
        /// The sample documents (the repository's tests/data).
        #[arg(long, default_value = "tests/data")]
        samples: PathBuf,
        /// Leave out the prosecution's leg on RabbitMQ.
        #[arg(long)]
        no_broker: bool,
        /// Also write what happened as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Load-test a gateway of its own made from this configuration, side by side with the
    /// machine's limit for the same work (ES256 signing on every core, and the same TLS stack
    /// answering a trivial handler), and report every result as a ratio to it (BENCHMARKS.md).
    Bench {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
        /// The sample documents (the repository's tests/data).
        #[arg(long, default_value = "tests/data")]
        samples: PathBuf,
        /// Connections per sender, each a mutual-TLS session of its own.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// The submissions to drive (repeat or comma-separate; default all).
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [crate::bench::Workload::Police, crate::bench::Workload::Court, crate::bench::Workload::Canonical])]
        workload: Vec<crate::bench::Workload>,
        /// Police reports written through the pipeline before a second start, to measure
        /// start-up, memory and draining with that backlog (0: skip).
        #[arg(long, default_value_t = 0)]
        backlog: u64,
        /// Keep the filled backlog store in this folder, and start from it instead of writing the
        /// backlog again when it holds one of the same size (for measuring one change at a time;
        /// the write time reported is then the one kept with it).
        #[arg(long)]
        backlog_cache: Option<PathBuf>,
        /// Also measure the police workload on the store in PostgreSQL, on a database of its own
        /// made (and dropped) on this server (`postgresql://postgres@127.0.0.1:5432`), side by
        /// side with the configured engine in the same run.
        #[arg(long)]
        postgres: Option<String>,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// The bench's backlog: police reports written through the pipeline into the store.
    #[command(hide = true)]
    BenchFill {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        samples: PathBuf,
        #[arg(long)]
        count: u64,
    },
    /// The bench's baseline: the gateway's TLS stack answering every request with a trivial 202.
    #[command(hide = true)]
    BenchBaseline {
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Simulate {
            config,
            samples,
            no_broker,
            report,
        } => simulate::run(&simulate::Options {
            config,
            samples,
            broker: !no_broker,
            report,
        }),
        Command::Bench {
            config,
            samples,
            connections,
            seconds,
            workload,
            backlog,
            backlog_cache,
            postgres,
            report,
        } => bench::run(&bench::Options {
            config,
            samples,
            connections,
            seconds,
            workloads: workload,
            backlog,
            backlog_cache,
            postgres,
            report,
        }),
        Command::BenchBaseline { config } => bench::baseline(&config),
        Command::BenchFill {
            config,
            samples,
            count,
        } => bench::fill_command(&config, &samples, count),
    };
    std::process::exit(code);
}

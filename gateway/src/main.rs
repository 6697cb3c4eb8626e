#![forbid(unsafe_code)]

use clap::Parser;
use jxg_gateway::cli::{
    AuditCommand, CertsCommand, Cli, Command, PolicyCommand, RetentionCommand, StoreCommand,
};
use jxg_gateway::config::Config;
use jxg_gateway::{server, telemetry};

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Certs {
            command: CertsCommand::Init { config, dir, force },
        } => jxg_gateway::cli::certs_init(&config, &dir, force),
        Command::Certs {
            command:
                CertsCommand::Revoke {
                    certs,
                    dir,
                    crl,
                    days,
                },
        } => jxg_gateway::cli::certs_revoke(&dir, crl, &certs, days),
        Command::Convert {
            from,
            to,
            sender,
            file,
        } => jxg_gateway::cli::convert(&from, &to, sender, &file),
        Command::Validate { file } => jxg_gateway::cli::validate(&file),
        Command::Retention {
            command: RetentionCommand::Purge { config, data, at },
        } => jxg_gateway::cli::retention_purge(&config, &data, &at),
        Command::Store {
            command:
                StoreCommand::Migrate {
                    config,
                    data,
                    batch,
                },
        } => jxg_gateway::cli::store_migrate(&config, &data, batch),
        Command::Store {
            command: StoreCommand::Copy { from, to, config },
        } => jxg_gateway::cli::store_copy(&config, &from, &to),
        Command::Audit {
            command: AuditCommand::Verify { config, data },
        } => jxg_gateway::cli::audit_verify(&config, &data),
        Command::Policy {
            command: PolicyCommand::Check { config, dir },
        } => jxg_gateway::cli::policy_check(&config, &dir),
        Command::Policy {
            command:
                PolicyCommand::Explain {
                    message,
                    recipient,
                    format,
                    sender,
                    config,
                    dir,
                },
        } => jxg_gateway::cli::policy_explain(&message, &recipient, &format, sender, &config, &dir),
    };
    std::process::exit(code);
}

fn serve(path: &std::path::Path) -> i32 {
    let telemetry = telemetry::init();
    let code = serve_with(path);
    telemetry.shutdown();
    code
}

fn serve_with(path: &std::path::Path) -> i32 {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jxg serve: {e}");
            return 1;
        }
    };
    let work = match server::work_runtime() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("jxg serve: cannot start the background runtime: {e}");
            return 1;
        }
    };
    let handle = work.handle().clone();
    let result = actix_web::rt::System::new().block_on(async move {
        let store = server::open_store(&config).await?;
        server::serve(config, store, handle).await
    });
    // background work still running (a delivery past the drain timeout) ends with its runtime
    work.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("jxg serve: {e}");
            1
        }
    }
}

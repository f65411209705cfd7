use std::process::ExitCode;

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use zcell_sched::cli::Cli;
use zcell_sched::exit::Exit;
use zcell_sched::log;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log(&format!("error: cannot start the async runtime: {e}"));
            return Exit::Usage.into();
        }
    };
    runtime.block_on(async {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            log("error: cannot install signal handlers");
            return Exit::Usage.into();
        };
        // The write order keeps every owned slot whole at any point, so
        // stopping at once is safe; say so, and let the next run finish.
        let stopped = |name: &str, code: u8| {
            log(&format!(
                "stopped by {name}: each owned slot holds its old values, is off, or is as planned; the next run completes the plan"
            ));
            ExitCode::from(code)
        };
        tokio::select! {
            result = cli.execute() => match result {
                Ok(()) => Exit::Ok.into(),
                Err(failure) => {
                    log(&format!("error: {failure}"));
                    failure.exit.into()
                }
            },
            _ = term.recv() => stopped("SIGTERM", 143),
            _ = int.recv() => stopped("SIGINT", 130),
        }
    })
}

use std::process::ExitCode;

use clap::Parser;
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
            return Exit::Gx.into();
        }
    };
    match runtime.block_on(cli.execute()) {
        Ok(()) => Exit::Ok.into(),
        Err(failure) => {
            log(&format!("error: {failure}"));
            failure.exit.into()
        }
    }
}

use std::process::ExitCode;

use clap::Parser;
use zcell_sched::cli::Cli;
use zcell_sched::exit::Exit;
use zcell_sched::log;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(cli.execute()),
        Err(e) => {
            log(&format!("error: cannot start the async runtime: {e}"));
            Exit::Usage.into()
        }
    }
}

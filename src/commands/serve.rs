//! `serve`: its options, handed to the server.

use std::path::PathBuf;

use clap::Args;

use crate::exit::Failure;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// JSON config file; its `serve` object holds the server's keys.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on, overriding `serve.listen` [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

pub async fn serve(args: ServeArgs) -> Result<(), Failure> {
    crate::serve::run(args.config.as_deref(), args.listen).await
}

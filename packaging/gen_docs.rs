//! Writes the man pages and shell completions of zcell-sched, generated
//! from its command-line definition, into a folder:
//!   man/zcell-sched.1, man/zcell-sched-run.1, ... (one per command)
//!   completions/zcell-sched.bash, completions/_zcell-sched (zsh),
//!   completions/zcell-sched.fish
//! A program of its own (a cargo example) so the installed binary does not
//! carry the generators. `scripts/package` runs it; by hand:
//!   cargo run --example zcell-gen-docs -- OUT_DIR

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::CommandFactory;
use clap_complete::Shell;
use zcell_sched::cli::Cli;

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        bail!("usage: zcell-gen-docs OUT_DIR");
    };
    let out = PathBuf::from(out);
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    clap_mangen::generate_to(Cli::command(), &man)
        .with_context(|| format!("writing the man pages to {}", man.display()))?;
    let mut command = Cli::command();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut command, "zcell-sched", &completions).with_context(
            || {
                format!(
                    "writing the {shell} completion to {}",
                    completions.display()
                )
            },
        )?;
    }
    Ok(())
}

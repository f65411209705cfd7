//! The Debian package's own files agree with the program: the example config
//! is valid for the controller and the server and ties them together, and
//! each systemd unit's command line parses and gives the program the
//! directories its config uses. (scripts/check-package installs the package.)

use std::path::{Path, PathBuf};

use clap::Parser;
use zcell_sched::cli::Cli;
use zcell_sched::zendure::config::ScheduleSource;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn unit(name: &str) -> String {
    let path = repo(&format!("packaging/systemd/zcell-sched.{name}.service"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of `key=` in a unit (the first, without comments).
fn setting<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
}

#[test]
fn the_example_config_runs_the_controller_and_the_server_together() {
    let example = repo("packaging/config.json.example");
    let zendure = zcell_sched::zendure::config::load(Some(&example)).expect("the zendure object");
    let serve = zcell_sched::serve::config::load(Some(&example)).expect("the serve object");
    // The controller follows the schedule the server keeps and edits.
    assert_eq!(
        zendure.schedule,
        ScheduleSource::File(serve.schedule_file.clone())
    );
    // It posts to that server.
    for url in [&zendure.report.status_url, &zendure.report.data_url] {
        let url = url.as_deref().expect("a report URL");
        assert!(
            url.starts_with(&format!("http://{}/", serve.listen)),
            "{url} is not the server's {}",
            serve.listen
        );
    }
}

#[test]
fn the_units_give_the_program_its_directories() {
    let example = repo("packaging/config.json.example");
    let zendure = zcell_sched::zendure::config::load(Some(&example)).unwrap();
    let serve = zcell_sched::serve::config::load(Some(&example)).unwrap();
    let controller = unit("zcell-sched-zendure");
    let server = unit("zcell-sched-serve");
    let run = Path::new("/run").join(setting(&controller, "RuntimeDirectory"));
    assert!(
        zendure.status_file.starts_with(&run),
        "{:?}",
        zendure.status_file
    );
    assert!(
        zendure.lock_file.starts_with(&run),
        "{:?}",
        zendure.lock_file
    );
    let state = Path::new("/var/lib").join(setting(&controller, "StateDirectory"));
    assert_eq!(zendure.state_dir, state);
    let state = Path::new("/var/lib").join(setting(&server, "StateDirectory"));
    assert!(serve.schedule_file.starts_with(&state));
    assert!(serve.database.starts_with(&state));
}

#[test]
fn the_units_command_lines_parse() {
    for name in ["zcell-sched-zendure", "zcell-sched-serve"] {
        let unit = unit(name);
        let exec = setting(&unit, "ExecStart");
        let args: Vec<&str> = exec.split_whitespace().collect();
        assert_eq!(args[0], "/usr/bin/zcell-sched", "{name}");
        assert!(
            args.contains(&"/etc/zcell-sched/config.json"),
            "{name}: {exec}"
        );
        Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{name}: {exec}: {e}"));
    }
}

//! The GX-side install logic (scripts/gx-setup, POSIX sh) against a
//! temporary directory standing in for the GX's /, under dash and under
//! busybox sh (the GX's shell), and install-gx/uninstall-gx end to end
//! through a fake ssh.

mod testenv;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testenv::{TestEnv, due_in};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const STOCK_CRONTAB: &str = "SHELL=/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
     */5 * * * * root /opt/victronenergy/swupdate-scripts/check-updates.sh -auto -delay\n";
const SHELLS: [&[&str]; 2] = [&["sh"], &["busybox", "sh"]];

fn script(name: &str) -> PathBuf {
    Path::new(REPO).join(name)
}

/// A directory standing in for the GX's root filesystem.
struct FakeGx {
    root: PathBuf,
    shell: &'static [&'static str],
}

impl FakeGx {
    fn new(env: &TestEnv, shell: &'static [&'static str], read_only: bool) -> FakeGx {
        let root = env.dir.join(format!("gx-root-{}", shell.join("-")));
        for dir in ["proc", "etc", "data"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        let gx = FakeGx { root, shell };
        gx.set_read_only(read_only);
        fs::write(gx.path("etc/crontab"), STOCK_CRONTAB).unwrap();
        gx
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    fn set_read_only(&self, ro: bool) {
        let opts = if ro { "ro" } else { "rw" };
        fs::write(
            self.path("proc/mounts"),
            format!("rootfs / rootfs rw 0 0\n/dev/root / ext4 {opts},relatime 0 0\n"),
        )
        .unwrap();
    }

    fn is_read_only(&self) -> bool {
        fs::read_to_string(self.path("proc/mounts"))
            .unwrap()
            .contains("ext4 ro,")
    }

    fn read(&self, p: &str) -> String {
        fs::read_to_string(self.path(p)).unwrap_or_default()
    }

    /// Takes the mount calls made so far.
    fn mounts(&self) -> Vec<String> {
        let log = self.read("mount.log");
        let _ = fs::remove_file(self.path("mount.log"));
        log.lines().map(str::to_string).collect()
    }

    fn setup(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(self.shell[0]);
        cmd.args(&self.shell[1..])
            .arg(script("scripts/gx-setup"))
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .env("ZCELL_MOUNT", script("tests/testenv/fake-mount"))
            .env("FAKE_GX_ROOT", &self.root);
        let out = cmd.output().unwrap_or_else(|e| {
            panic!(
                "cannot run {:?} ({e}): apt-get install busybox (./scripts/test does)",
                self.shell
            )
        });
        assert!(
            out.status.success(),
            "gx-setup {args:?} under {:?}: {}",
            self.shell,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn cron_lines(&self) -> Vec<String> {
        self.read("etc/crontab")
            .lines()
            .filter(|l| l.ends_with(" # zcell-sched"))
            .map(str::to_string)
            .collect()
    }
}

fn for_each_shell(test: impl Fn(&TestEnv, &'static [&'static str])) {
    let env = TestEnv::new(&[]);
    for shell in SHELLS {
        test(&env, shell);
    }
}

#[test]
fn first_boot_on_a_read_only_root_adds_the_entry_and_restores_ro() {
    for_each_shell(|env, shell| {
        let gx = FakeGx::new(env, shell, true);
        gx.setup(&["install", "--at", "07:05"]);
        assert_eq!(
            gx.cron_lines(),
            vec![
                "5 * * * * root /data/zcell-sched/zcell-sched run --skip-if-done 2>&1 >/dev/null | logger -t zcell-sched # zcell-sched"
            ],
            "{shell:?}"
        );
        assert!(
            gx.read("etc/crontab").starts_with(STOCK_CRONTAB),
            "other entries kept"
        );
        assert_eq!(
            gx.mounts(),
            vec!["-o remount,rw /", "-o remount,ro /"],
            "{shell:?}"
        );
        assert!(gx.is_read_only());
        let rc = gx.read("data/rc.local");
        assert!(rc.starts_with("#!/bin/sh\n"), "{rc}");
        let mode = fs::metadata(gx.path("data/rc.local"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "rc.local must be executable");
    });
}

#[test]
fn later_boots_change_nothing() {
    for_each_shell(|env, shell| {
        let gx = FakeGx::new(env, shell, true);
        gx.setup(&["install"]);
        gx.mounts();
        let crontab = gx.read("etc/crontab");
        for _ in 0..3 {
            gx.setup(&["boot"]);
        }
        assert_eq!(
            gx.mounts(),
            Vec::<String>::new(),
            "no remount when nothing changes"
        );
        assert_eq!(gx.read("etc/crontab"), crontab);
    });
}

#[test]
fn a_firmware_update_loses_the_entry_and_the_next_boot_restores_it() {
    for_each_shell(|env, shell| {
        let gx = FakeGx::new(env, shell, true);
        gx.setup(&["install"]);
        gx.mounts();
        fs::write(gx.path("etc/crontab"), STOCK_CRONTAB).unwrap();
        gx.setup(&["boot"]);
        assert_eq!(gx.cron_lines().len(), 1);
        assert_eq!(gx.mounts(), vec!["-o remount,rw /", "-o remount,ro /"]);
        // A root left read-write (e.g. by the owner) is not remounted at all.
        gx.set_read_only(false);
        fs::write(gx.path("etc/crontab"), STOCK_CRONTAB).unwrap();
        gx.setup(&["boot"]);
        assert_eq!(gx.cron_lines().len(), 1);
        assert_eq!(gx.mounts(), Vec::<String>::new());
        assert!(!gx.is_read_only());
    });
}

#[test]
fn an_existing_rc_local_keeps_its_content_and_gets_one_snippet_before_exit() {
    for_each_shell(|env, shell| {
        let gx = FakeGx::new(env, shell, false);
        let mine = "#!/bin/bash\n# the owner's own boot tweaks\n/data/other/start.sh &\n\nexit 0\n";
        fs::write(gx.path("data/rc.local"), mine).unwrap();
        fs::set_permissions(gx.path("data/rc.local"), fs::Permissions::from_mode(0o644)).unwrap();
        gx.setup(&["install"]);
        gx.setup(&["install", "--at", "06:30"]);
        let rc = gx.read("data/rc.local");
        assert_eq!(rc.matches("# zcell-sched begin").count(), 1, "{rc}");
        let snippet = rc.find("gx-setup boot").unwrap();
        assert!(snippet < rc.find("exit 0").unwrap(), "before exit: {rc}");
        assert!(
            rc.starts_with("#!/bin/bash\n# the owner's own boot tweaks\n/data/other/start.sh &\n")
        );
        assert!(rc.ends_with("\nexit 0\n"), "{rc}");
        let mode = fs::metadata(gx.path("data/rc.local"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert!(
            gx.cron_lines()[0].starts_with("30 * * * *"),
            "{:?}",
            gx.cron_lines()
        );
        // Without a final exit the snippet goes at the end.
        fs::write(gx.path("data/rc.local"), "#!/bin/sh\necho hello\n").unwrap();
        gx.setup(&["install"]);
        let rc = gx.read("data/rc.local");
        assert!(
            rc.starts_with("#!/bin/sh\necho hello\n# zcell-sched begin"),
            "{rc}"
        );
    });
}

#[test]
fn the_snippet_is_the_one_in_rc_local_example() {
    let env = TestEnv::new(&[]);
    let gx = FakeGx::new(&env, SHELLS[0], false);
    gx.setup(&["install"]);
    let written = gx.read("data/rc.local");
    let example = fs::read_to_string(script("rc.local.example")).unwrap();
    let block = |text: &str| {
        let start = text.find("# zcell-sched begin").expect("a block");
        let end = text.find("# zcell-sched end").expect("an end") + "# zcell-sched end".len();
        text[start..end].to_string()
    };
    assert_eq!(block(&written), block(&example));
}

#[test]
fn uninstall_removes_only_what_install_added() {
    for_each_shell(|env, shell| {
        let gx = FakeGx::new(env, shell, true);
        fs::write(gx.path("data/rc.local"), "#!/bin/sh\necho mine\n").unwrap();
        gx.setup(&["install"]);
        gx.mounts();
        gx.setup(&["uninstall"]);
        assert_eq!(gx.read("etc/crontab"), STOCK_CRONTAB);
        assert_eq!(gx.read("data/rc.local"), "#!/bin/sh\necho mine\n");
        assert!(!gx.path("data/zcell-sched").exists());
        assert_eq!(gx.mounts(), vec!["-o remount,rw /", "-o remount,ro /"]);
        assert!(gx.is_read_only());
    });
}

#[test]
fn bad_options_are_refused() {
    let env = TestEnv::new(&[]);
    let gx = FakeGx::new(&env, SHELLS[1], false);
    for args in [&["install", "--at", "7am"][..], &["frobnicate"], &["boot"]] {
        let out = Command::new("busybox")
            .args(["sh"])
            .arg(script("scripts/gx-setup"))
            .arg("--root")
            .arg(&gx.root)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

fn transport(cmd: &mut Command, gx: &FakeGx) {
    cmd.env("ZCELL_SSH", script("tests/testenv/fake-ssh"))
        .env("ZCELL_SCP", script("tests/testenv/fake-scp"))
        .env("FAKE_GX_ROOT", &gx.root)
        .env("FAKE_GX_MOUNT", script("tests/testenv/fake-mount"));
}

#[test]
fn install_gx_upgrade_and_uninstall_gx_end_to_end() {
    let env = TestEnv::new(&["--set=/Settings/System/TimeZone=Australia/Hobart"])
        .with_bms(&due_in(48 * 3600), &[]);
    let gx = FakeGx::new(&env, SHELLS[0], true);
    let binary = env!("CARGO_BIN_EXE_zcell-sched");
    let install = |args: &[&str]| {
        let mut cmd = Command::new(script("scripts/install-gx"));
        cmd.arg("root@venus.local").args(args);
        env.wire(&mut cmd);
        transport(&mut cmd, &gx);
        cmd.output().unwrap()
    };

    let out = install(&["--binary", binary]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("first install: give --bms"));

    // 06:00 with the default peaks leaves 06:00-07:00 as a third window.
    let out = install(&["--bms", env.bms(), "--at", "06:00", "--binary", binary]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs more owned slots"), "{err}");
    assert!(err.contains("nothing was installed"), "{err}");
    assert!(gx.cron_lines().is_empty());
    assert!(!gx.path("data/zcell-sched/zcell-sched").exists());

    let out = install(&["--bms", env.bms(), "--at", "07:10", "--binary", binary]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("GX time zone  Australia/Hobart"),
        "status shown: {text}"
    );
    assert!(text.contains("planning day"), "dry run shown: {text}");
    let config = gx.read("data/zcell-sched/config.json");
    assert!(
        config.contains(&format!("\"bms\": \"{}\"", env.bms())),
        "{config}"
    );
    assert!(config.contains("\"day_start\": \"07:10\""), "{config}");
    assert_eq!(gx.cron_lines().len(), 1);
    assert!(gx.cron_lines()[0].starts_with("10 * * * *"));
    assert!(gx.is_read_only());
    assert_eq!(env.writes(), vec![], "install only shows, never writes");

    // Run it as cron would, then upgrade: the config stays.
    let installed = gx.path("data/zcell-sched/zcell-sched");
    let mut cron = Command::new(&installed);
    cron.args(["run", "--config"])
        .arg(gx.path("data/zcell-sched/config.json"));
    env.wire(&mut cron);
    assert!(cron.output().unwrap().status.success());
    assert_eq!(env.slot(3).3, 100);
    fs::write(
        gx.path("data/zcell-sched/config.json"),
        config.replace("\"reserve_soc\": 100", "\"reserve_soc\": 95"),
    )
    .unwrap();
    let out = install(&["--binary", binary]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("keeping the config.json"));
    assert!(
        gx.read("data/zcell-sched/config.json")
            .contains("\"reserve_soc\": 95")
    );
    assert_eq!(gx.cron_lines().len(), 1);

    let mut cmd = Command::new(script("scripts/uninstall-gx"));
    cmd.arg("root@venus.local");
    env.wire(&mut cmd);
    transport(&mut cmd, &gx);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        env.slot(3).0 < 0 && env.slot(4).0 < 0,
        "owned slots disabled"
    );
    assert!(gx.cron_lines().is_empty());
    assert!(!gx.path("data/zcell-sched").exists());
    assert!(!gx.read("data/rc.local").contains("zcell-sched"));
}

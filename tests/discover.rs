//! `zcell-sched discover` against real mDNS announcements made by
//! `zcell-test-mdns`, inside a private network namespace that holds only a
//! loopback interface: no packet of these tests can reach another
//! interface, and both programs are also told `--interface lo`.
#![cfg(feature = "discover")]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// A test double built next to this test binary.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug")
        .join("examples")
        .join(name)
}

const SERVICES: [&str; 5] = [
    "_zendure._tcp/Zendure-SolarFlow800-A1B2C3D4E5F6/80/sn=HOA1NAN9N385989",
    "_http._tcp/Zendure-SolarFlow2400AC-112233445566/80",
    "_http._tcp/printer/631",
    "_hwenergy._tcp/p1meter-0A1B2C/8081/product_type=HWE-P1,serial=5c2faf0a1b2c,path=/api/v1",
    "_homewizard._tcp/p1meter-v2/443/product_type=HWE-P1,serial=5c2faf0a1b2d",
];

/// Runs `zcell-sched discover ARGS` while `services` are announced, both in
/// a fresh network namespace (loopback only, multicast on).
fn discover(services: &[&str], args: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!(
        "zcell-discover-{}-{}",
        std::process::id(),
        args.join("_").replace('/', "")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The announcer lives as long as its stdin, a fifo this script holds
    // open (so it ends with the script, however that ends), and says
    // `announced` through another fifo once registered.
    let script = r#"
        set -e
        ip link set lo up
        ip link set lo multicast on
        dir=$1 announce=$2 bin=$3 n=$4
        shift 4
        mkfifo "$dir/hold" "$dir/ready"
        services=""
        i=0
        while [ "$i" -lt "$n" ]; do i=$((i + 1)); services="$services $1"; shift; done
        # shellcheck disable=SC2086
        "$announce" --interface lo $services <"$dir/hold" >"$dir/ready" &
        exec 4>"$dir/hold"
        read -r ready <"$dir/ready"
        [ "$ready" = announced ]
        "$bin" discover --interface lo "$@"
    "#;
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--", "sh", "-c", script, "sh"])
        .arg(&dir)
        .arg(example("zcell-test-mdns"))
        .arg(env!("CARGO_BIN_EXE_zcell-sched"))
        .arg(services.len().to_string())
        .args(services)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run unshare ({e}): install util-linux; the discovery tests run in a private network namespace")
        });
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("unshare: "),
        "cannot make a private network namespace: {err}\n\
         these tests need user namespaces (sysctl kernel.unprivileged_userns_clone=1 \
         or user.max_user_namespaces > 0) or root"
    );
    assert!(
        !err.contains("ip: not found") && !err.contains("RTNETLINK"),
        "cannot set up loopback multicast in the namespace: {err}\ninstall iproute2"
    );
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn finds_batteries_and_meters_and_ignores_other_web_servers() {
    let out = discover(&SERVICES, &["--seconds", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    let found = doc.as_array().expect("a list");
    let by_instance = |name: &str| {
        found
            .iter()
            .find(|f| f["instance"] == name)
            .unwrap_or_else(|| panic!("{name} not found in {doc:#}"))
    };
    let battery = by_instance("Zendure-SolarFlow800-A1B2C3D4E5F6");
    assert_eq!(battery["address"], "127.0.0.1:80");
    assert_eq!(battery["model"], "SolarFlow800");
    assert_eq!(battery["serial"], "HOA1NAN9N385989");
    assert_eq!(battery["kind"], "zendure");
    let fw2 = by_instance("Zendure-SolarFlow2400AC-112233445566");
    assert_eq!(fw2["service"], "_http._tcp");
    assert_eq!(fw2["serial"], "112233445566");
    let p1 = by_instance("p1meter-0A1B2C");
    assert_eq!(p1["kind"], "home-wizard-v1");
    assert_eq!(p1["address"], "127.0.0.1:8081");
    assert_eq!(p1["model"], "HWE-P1");
    assert_eq!(p1["serial"], "5c2faf0a1b2c");
    let v2 = by_instance("p1meter-v2");
    assert_eq!(v2["kind"], "home-wizard-v2");
    assert!(
        found.iter().all(|f| f["instance"] != "printer"),
        "a plain web server was taken for a device: {doc:#}"
    );
    assert_eq!(found.len(), 4, "{doc:#}");
}

#[test]
fn the_table_shows_address_model_and_serial() {
    let out = discover(&SERVICES[3..4], &["--seconds", "2"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("homewizard meter     127.0.0.1:8081"), "{all}");
    assert!(all.contains("model HWE-P1"), "{all}");
    assert!(all.contains("serial 5c2faf0a1b2c"), "{all}");
}

#[test]
fn auto_resolves_the_one_device_and_refuses_to_guess() {
    let one = discover(&SERVICES[..1], &["--seconds", "2", "--auto", "battery"]);
    assert_eq!(one.status.code(), Some(0), "{}", text(&one));
    assert_eq!(String::from_utf8_lossy(&one.stdout), "127.0.0.1:80\n");

    let two = discover(&SERVICES[..2], &["--seconds", "2", "--auto", "battery"]);
    assert_eq!(two.status.code(), Some(1), "{}", text(&two));
    assert!(text(&two).contains("2 devices answered"), "{}", text(&two));

    let by_sn = discover(
        &SERVICES[..2],
        &[
            "--seconds",
            "2",
            "--auto",
            "battery",
            "--sn",
            "112233445566",
        ],
    );
    assert_eq!(by_sn.status.code(), Some(0), "{}", text(&by_sn));

    let meter = discover(&SERVICES[..1], &["--seconds", "1", "--auto", "homewizard"]);
    assert_eq!(meter.status.code(), Some(1), "{}", text(&meter));
    assert!(
        text(&meter).contains("give its address"),
        "{}",
        text(&meter)
    );
}

#[test]
fn an_unknown_interface_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_zcell-sched"))
        .args(["discover", "--interface", "nosuch0", "--seconds", "0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no network interface `nosuch0`"),
        "{}",
        text(&out)
    );
}

/// A fresh folder for a controller's files, with a schedule of 0 W.
#[cfg(feature = "zendure")]
fn controller_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zcell-discover-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("schedule.json"), r#"{"********0000": 0}"#).unwrap();
    dir
}

/// `"device": "auto"` and `"meter": {"address": "auto"}`: `zendure once`
/// finds the simulated home's battery (by its serial) and P1 meter on mDNS
/// and reads both, all inside the private namespace.
#[cfg(feature = "zendure")]
#[test]
fn zendure_auto_finds_the_battery_and_the_meter() {
    let dir = controller_dir("auto");
    // The home's ports are known only once it runs: the script reads its
    // readiness line, announces those ports, and prints them before
    // `once`'s output.
    let script = r#"
        set -e
        ip link set lo up
        ip link set lo multicast on
        dir=$1 home=$2 announce=$3 bin=$4
        mkfifo "$dir/home" "$dir/hold" "$dir/ready"
        "$home" >"$dir/home" 2>"$dir/home.log" &
        home_pid=$!
        trap 'kill $home_pid' EXIT
        exec 5<"$dir/home"
        read -r ready ports <&5
        [ "$ready" = ready ]
        echo "$ports"
        field() { printf '%s' "$ports" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
        device=$(field device) meter=$(field homewizard) sn=$(field sn)
        sed "s/SERIAL/$sn/" "$dir/config.in" >"$dir/config.json"
        "$announce" --interface lo \
            "_zendure._tcp/Zendure-SolarFlow800-A1B2C3D4E5F6/${device##*:}/sn=$sn" \
            "_hwenergy._tcp/p1meter-0A1B2C/${meter##*:}/product_type=HWE-P1,serial=5c2faf0a1b2c" \
            <"$dir/hold" >"$dir/ready" &
        exec 4>"$dir/hold"
        read -r ready <"$dir/ready"
        [ "$ready" = announced ]
        "$bin" zendure once --dry-run --config "$dir/config.json"
    "#;
    let config = serde_json::json!({"zendure": {
        "device": "auto",
        "sn": "SERIAL",
        "meter": {"kind": "homewizard", "address": "auto"},
        "schedule": dir.join("schedule.json"),
        "time_zone": "UTC",
        "status_file": dir.join("status.json"),
        "lock_file": dir.join("zendure.lock"),
        "state_dir": dir.join("state"),
        "discover_for": 2,
        "http_timeout": 2,
    }});
    std::fs::write(dir.join("config.in"), config.to_string()).unwrap();
    let out = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--net",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&dir)
        .arg(example("zcell-test-zendure-home"))
        .arg(example("zcell-test-mdns"))
        .arg(env!("CARGO_BIN_EXE_zcell-sched"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run unshare ({e}): install util-linux"));
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ports: Value = serde_json::from_str(stdout.lines().next().unwrap_or_default())
        .unwrap_or_else(|_| panic!("no ports line: {all}"));
    let device = format!(
        "device    http://{}: SoC ",
        ports["device"].as_str().unwrap()
    );
    assert!(stdout.contains(&device), "{all}");
    let meter = format!(
        "meter     homewizard http://{}/api/v1/data: ",
        ports["homewizard"].as_str().unwrap()
    );
    assert!(stdout.contains(&meter), "{all}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lines of a child's output, read on a thread so a wait has a bound.
fn lines(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (bounded) for the next line containing `text`; returns it.
fn wait_line(rx: &std::sync::mpsc::Receiver<String>, text: &str, seen: &mut Vec<String>) -> String {
    loop {
        match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(text) {
                    return line;
                }
            }
            Err(e) => panic!("never saw {text:?} ({e}); so far:\n{}", seen.join("\n")),
        }
    }
}

/// The battery's address changes (the home restarts on another port, as
/// after a new DHCP lease): the running controller, unable to reach it for
/// `rediscover_after`, finds it again on mDNS and reads it there.
#[cfg(feature = "zendure")]
#[test]
fn zendure_auto_finds_the_battery_again_after_it_moved() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = controller_dir("moved");
    // Steps wait for a line on stdin from the test; the controller's log
    // goes to stderr, the homes' ports to stdout.
    let script = r#"
        set -e
        ip link set lo up
        ip link set lo multicast on
        dir=$1 home=$2 announce=$3 bin=$4
        mkfifo "$dir/home1" "$dir/home2" "$dir/hold1" "$dir/hold2" "$dir/ready1" "$dir/ready2"
        field() { printf '%s' "$2" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
        "$home" >"$dir/home1" 2>"$dir/home1.log" &
        home1=$!
        exec 5<"$dir/home1"
        read -r ready ports <&5
        echo "first $ports"
        device=$(field device "$ports") meter=$(field homewizard "$ports") sn=$(field sn "$ports")
        sed "s/SERIAL/$sn/; s/METER/$meter/" "$dir/config.in" >"$dir/config.json"
        "$announce" --interface lo "_zendure._tcp/Zendure-SolarFlow800-A1B2C3D4E5F6/${device##*:}/sn=$sn" \
            <"$dir/hold1" >"$dir/ready1" &
        announcer1=$!
        exec 4>"$dir/hold1"
        read -r ready <"$dir/ready1"
        # Without fd 4: the first announcer ends when that fifo closes.
        "$bin" zendure run --config "$dir/config.json" >/dev/null 4>&- &
        controller=$!
        trap 'kill $controller $home1 $home2 2>/dev/null || true' EXIT
        read -r step
        exec 4>&-
        wait $announcer1 || true
        kill $home1
        "$home" >"$dir/home2" 2>"$dir/home2.log" &
        home2=$!
        exec 6<"$dir/home2"
        read -r ready ports <&6
        echo "second $ports"
        device=$(field device "$ports")
        "$announce" --interface lo "_zendure._tcp/Zendure-SolarFlow800-A1B2C3D4E5F7/${device##*:}/sn=$sn" \
            <"$dir/hold2" >"$dir/ready2" &
        exec 7>"$dir/hold2"
        read -r ready <"$dir/ready2"
        read -r step
        kill -TERM $controller
        wait $controller
    "#;
    let config = serde_json::json!({"zendure": {
        "device": "auto",
        "sn": "SERIAL",
        "meter": {"kind": "homewizard", "address": "METER"},
        "schedule": dir.join("schedule.json"),
        "time_zone": "UTC",
        "status_file": dir.join("status.json"),
        "lock_file": dir.join("zendure.lock"),
        "state_dir": dir.join("state"),
        "interval": 0.2,
        "http_timeout": 0.5,
        "discover_for": 1,
        "rediscover_after": 1,
    }});
    std::fs::write(dir.join("config.in"), config.to_string()).unwrap();
    let mut child = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--net",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&dir)
        .arg(example("zcell-test-zendure-home"))
        .arg(example("zcell-test-mdns"))
        .arg(env!("CARGO_BIN_EXE_zcell-sched"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run unshare ({e}): install util-linux"));
    let out = lines(child.stdout.take().unwrap());
    let log = lines(child.stderr.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = Vec::new();
    let port = |line: &str| -> String {
        let doc: Value = serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
        doc["device"].as_str().unwrap().to_string()
    };
    let first = port(&wait_line(&out, "first ", &mut seen));
    wait_line(&log, &format!("started: device http://{first}"), &mut seen);
    wait_line(&log, "wrote idle", &mut seen);
    writeln!(stdin, "move").unwrap();
    let second = port(&wait_line(&out, "second ", &mut seen));
    assert_ne!(first, second);
    wait_line(&log, &format!("found again at {second}"), &mut seen);
    wait_line(&log, "device answers again", &mut seen);
    writeln!(stdin, "stop").unwrap();
    wait_line(&log, "stopped", &mut seen);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}; log:\n{}", seen.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

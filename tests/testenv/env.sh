# shellcheck shell=bash
# The test environment for shell scripts (scripts/demo, scripts/bench, the
# armv7 check): a private dbus-daemon, the simulated GX settings service and
# a fake BMS, the same programs the Rust integration tests start. Source it,
# then call testenv_up; testenv_down runs on exit.
#
# Sets: TESTENV_DIR, DBUS_SYSTEM_BUS_ADDRESS, ZCELL_SCHED_LOCK_FILE,
# ZCELL_SCHED_STATUS_FILE, BMS_URL.
# Needs: TARGET_DIR holding zcell-sched, and examples/ with the test doubles.

TESTENV_PIDS=()

testenv_down() {
    local pid
    for pid in "${TESTENV_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${TESTENV_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    TESTENV_PIDS=()
    [ -n "${TESTENV_DIR:-}" ] && rm -rf "$TESTENV_DIR"
}

# testenv_dir: a fresh TESTENV_DIR, removed (and what was started in it
# stopped) on exit.
testenv_dir() {
    TESTENV_DIR=$(mktemp -d "${TMPDIR:-/tmp}/zcell-sched-env.XXXXXX")
    trap testenv_down EXIT
}

# testenv_start NAME COMMAND...: starts COMMAND in the background and waits
# for the first line it prints, its readiness signal, into READY_LINE. The
# rest of its output can be read from READY_FD.
testenv_start() {
    local name=$1 fd
    shift
    mkfifo "$TESTENV_DIR/$name.out"
    "$@" >"$TESTENV_DIR/$name.out" 2>"$TESTENV_DIR/$name.log" &
    TESTENV_PIDS+=("$!")
    exec {fd}<"$TESTENV_DIR/$name.out"
    READY_FD=$fd
    if ! IFS= read -r -t 30 READY_LINE <&"$fd"; then
        echo "$name did not start:" >&2
        cat "$TESTENV_DIR/$name.log" >&2
        return 1
    fi
}

# testenv_up [GX SIMULATOR FLAGS...]: bus, GX and BMS (serving
# $TESTENV_DIR/bms.json, which may be rewritten at any time).
testenv_up() {
    command -v dbus-daemon >/dev/null || {
        echo "dbus-daemon is missing: apt-get install dbus" >&2
        return 1
    }
    testenv_dir
    sed "s|@SOCKET@|$TESTENV_DIR/bus|" "${BASH_SOURCE[0]%/*}/bus.conf" >"$TESTENV_DIR/bus.conf"
    testenv_start bus dbus-daemon --nofork --print-address=1 --config-file "$TESTENV_DIR/bus.conf"
    export DBUS_SYSTEM_BUS_ADDRESS=$READY_LINE
    export ZCELL_SCHED_LOCK_FILE=$TESTENV_DIR/run.lock
    export ZCELL_SCHED_STATUS_FILE=$TESTENV_DIR/status.json
    testenv_start gx "$TARGET_DIR/examples/zcell-test-gx" --address "$DBUS_SYSTEM_BUS_ADDRESS" \
        --state "$TESTENV_DIR/state.json" --log "$TESTENV_DIR/writes.jsonl" "$@"
    [ "$READY_LINE" = ready ] || { echo "GX simulator said: $READY_LINE" >&2; return 1; }
    echo '{"list": []}' >"$TESTENV_DIR/bms.json"
    testenv_start bms "$TARGET_DIR/examples/zcell-test-bms" --body-file "$TESTENV_DIR/bms.json"
    export BMS_URL=${READY_LINE#listening }
}

# testenv_payload SECONDS_TO_MAINTENANCE [STRIPPING]: one battery.
testenv_payload() {
    local target=259200
    printf '{"list": [{"id": 1, "state_of_charge": 87.4, "is_stripping": %s, "strip_pump_run_timer": %d, "strip_pump_run_target": %d}]}\n' \
        "${2:-false}" $((target - $1)) "$target" >"$TESTENV_DIR/bms.json"
}

# testenv_writes: how many SetValue calls the GX simulator has seen.
testenv_writes() {
    if [ -f "$TESTENV_DIR/writes.jsonl" ]; then
        wc -l <"$TESTENV_DIR/writes.jsonl"
    else
        echo 0
    fi
}

# testenv_slot N: "Day Start Duration Soc" of slot N as the GX holds it.
testenv_slot() {
    local n=$1 leaf out=()
    for leaf in Day Start Duration Soc; do
        out+=("$(sed -n "s|.*\"/Settings/CGwacs/BatteryLife/Schedule/Charge/$n/$leaf\": \(-\{0,1\}[0-9]*\).*|\1|p" "$TESTENV_DIR/state.json")")
    done
    echo "${out[*]}"
}

# free_port: a loopback TCP port nothing listens on.
free_port() {
    local port
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# testenv_mosquitto: a mosquitto broker on loopback. Sets MQTT_PORT.
testenv_mosquitto() {
    local port fd line
    command -v mosquitto >/dev/null || {
        echo "mosquitto is missing: apt-get install mosquitto" >&2
        return 1
    }
    port=$(free_port)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\nlog_dest stderr\nuser root\npersistence false\n' \
        "$port" >"$TESTENV_DIR/mosquitto.conf"
    # stderr: mosquitto buffers its stdout when it is a pipe.
    mkfifo "$TESTENV_DIR/mosquitto.err"
    mosquitto -c "$TESTENV_DIR/mosquitto.conf" >/dev/null 2>"$TESTENV_DIR/mosquitto.err" &
    TESTENV_PIDS+=("$!")
    exec {fd}<"$TESTENV_DIR/mosquitto.err"
    while true; do
        IFS= read -r -t 30 line <&"$fd" || { echo "mosquitto did not start" >&2; return 1; }
        case $line in *" running") break ;; esac
    done
    cat <&"$fd" >/dev/null &
    TESTENV_PIDS+=("$!")
    MQTT_PORT=$port
}

# testenv_mqtt_up: a mosquitto broker on loopback and the flashmq emulator
# bridging it to the simulated GX. Sets MQTT_URL.
testenv_mqtt_up() {
    testenv_mosquitto
    testenv_start flashmq "$TARGET_DIR/examples/zcell-test-flashmq" --broker "127.0.0.1:$MQTT_PORT" \
        --bus "$DBUS_SYSTEM_BUS_ADDRESS" --log "$TESTENV_DIR/w-messages.log"
    export MQTT_URL=mqtt://127.0.0.1:$MQTT_PORT
}

# The simulated Zendure home, for scripts/demo --zendure and
# scripts/bench-zendure: a SolarFlow device, a house and its P1 meter
# (every kind) on one simulated clock. Needs jq and curl.

# testenv_zendure_home NAME [HOME FLAGS...]: starts zcell-test-zendure-home
# (its flags: tests/testenv/zendure_home.rs). Sets ZHOME, its readiness
# JSON (the addresses).
testenv_zendure_home() {
    local name=$1
    shift
    testenv_start "$name" "$TARGET_DIR/examples/zcell-test-zendure-home" "$@"
    case $READY_LINE in
    "ready "*) ZHOME=${READY_LINE#ready } ;;
    *) echo "$name said: $READY_LINE" >&2; return 1 ;;
    esac
    # Drained, so a long `finished` line never blocks the home on a full pipe.
    cat <&"$READY_FD" >"$TESTENV_DIR/$name.rest" &
    TESTENV_PIDS+=("$!")
}

# zhome KEY: an address from the home's readiness line (device, control,
# homewizard, homewizard_v2, zendure_p1, dsmr).
zhome() {
    jq -r ".$1" <<<"$ZHOME"
}

# zhome_control PATH [JSON]: GET the home's control API PATH, or POST JSON
# to it; prints the home's state.
zhome_control() {
    local url
    url=http://$(zhome control)$1
    if [ $# -gt 1 ]; then
        curl -fsS --max-time 10 -H 'Content-Type: application/json' -d "$2" "$url"
    else
        curl -fsS --max-time 10 "$url"
    fi
}

# zendure_config DIR SPEED SCHEDULE [JQ-FILTER]: writes DIR/config.json for
# zcell-sched zendure: the home's device and HomeWizard v1 meter, the
# schedule file or URL SCHEDULE, status, lock and state files in DIR, and
# every duration of the defaults divided by SPEED (the home's clock speed),
# so the controller lives on the home's clock. JQ-FILTER edits the result
# (e.g. '.zendure.meter_lag = 0.05').
zendure_config() {
    local dir=$1 speed=$2 schedule=$3 filter=${4:-.}
    jq -n --arg device "$(zhome device)" --arg meter "$(zhome homewizard)" \
        --arg schedule "$schedule" --arg dir "$dir" --argjson speed "$speed" '
        {zendure: {
            device: $device,
            meter: {kind: "homewizard", address: $meter},
            schedule: $schedule,
            time_zone: "UTC",
            max_charge_w: 1000,
            max_discharge_w: 800,
            status_file: "\($dir)/status.json",
            lock_file: "\($dir)/zendure.lock",
            state_dir: "\($dir)/state",
            interval: (2 / $speed),
            schedule_refresh: (300 / $speed),
            meter_timeout: (30 / $speed),
            min_write_interval: (10 / $speed),
            min_direction_change: (60 / $speed),
            reassert: (60 / $speed),
            http_timeout: (5 / $speed)
        }}' | jq "$filter" >"$dir/config.json"
    mkdir -p "$dir/state"
}

# zendure_schedule FILE VALUE: a schedule of one entry, VALUE (W, netzero
# or netzero+) at every moment, written atomically. The controller reads
# its schedule by the wall clock; scripts that run the home's clock faster
# change the value in force by rewriting this file.
zendure_schedule() {
    local file=$1 value=$2
    case $value in
    netzero | netzero+) value="\"$value\"" ;;
    esac
    printf '{"************": %s}\n' "$value" >"$file.tmp"
    mv "$file.tmp" "$file"
}

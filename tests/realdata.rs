//! Answers captured from real meters by other projects (their test suites),
//! read where the project's shared data lies beside the repository
//! (`../shared/realdata`, or `ZCELL_REALDATA`), never copied in. Each
//! expected value is the one the source project asserts (its SOURCES.md).
#![cfg(feature = "zendure")]

use std::path::PathBuf;

use zcell_sched::zendure::io::meter::dsmr::{newer, parse_telegram, split_telegrams};

fn realdata(path: &str) -> Vec<u8> {
    let root = std::env::var_os("ZCELL_REALDATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata"),
        PathBuf::from,
    );
    let file = root.join(path);
    std::fs::read(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: the real-device captures are not there; put the shared data beside \
             the repository (../shared/realdata) or set ZCELL_REALDATA to its folder",
            file.display()
        )
    })
}

/// What the stream parser makes of a whole capture: the newest good reading.
fn read_stream(path: &str) -> Result<i32, String> {
    let mut buffer = realdata(path);
    split_telegrams(&mut buffer)
        .iter()
        .fold(None, |kept, t| newer(kept, parse_telegram(t)))
        .ok_or_else(|| "no complete telegram".to_string())?
        .map_err(|e| e.to_string())
}

#[test]
fn dsmr_telegrams_of_real_meters_read_as_their_sources_assert() {
    // (capture, net W = import - export as the source asserts it in kW)
    let cases: &[(&str, i32)] = &[
        ("dsmr_parser-TELEGRAM_V2_2.txt", 1010),
        ("dsmr_parser-TELEGRAM_V3.txt", 1190),
        ("dsmr_parser-TELEGRAM_V4_2.txt", 2027),
        ("dsmr_parser-TELEGRAM_V5.txt", 244),
        ("dsmr_parser-TELEGRAM_FLUVIUS_V171.txt", 0),
        ("dsmr_parser-TELEGRAM_FLUVIUS_V171_ALT.txt", 338),
        ("dsmr_parser-TELEGRAM_ISKRA_IE.txt", 170 - 270),
        ("dsmr_parser-TELEGRAM_V5_EON_HU.txt", -2601),
        // Import only, in W, with gateway lines after the `!`.
        ("dsmr_parser-TELEGRAM_ESY5Q3DB1024_V304.txt", 2125),
        ("dsmr-tools-RealDSMR5-testParseRealTelegram.txt", 433),
        (
            "dsmr-tools-RealDSMR5-testParseRealTelegramWithSpaceInDeviceName.txt",
            4,
        ),
        ("dsmr-tools-RealDSMR4-testParseRealTelegramWithGas.txt", 374),
        ("dsmr-tools-RealDSMR4-testDSMR42Telegram.txt", 0),
        ("dsmr-tools-RealDSMR2-testDSMRTelegramIssue54.txt", 890),
        ("dsmr-tools-RealDSMR2-testDSMRTelegramIssue54Extra.txt", 670),
        ("dsmr-tools-RealDSMR2-testDSMR22Telegram1.txt", -620),
        ("dsmr-tools-RealDSMR2-testDSMR22Telegram2.txt", 680),
        ("dsmr-tools-RealDSMR2-testDSMR22Telegram3.txt", 540),
        ("dsmr-tools-RealDSMR2-testDSMR22Telegram4.txt", 980),
        // A real stream: a telegram cut mid-line, then a complete one.
        ("dsmr-tools-BadTelegram-testParseBadTestcase.txt", -2857),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(file, want)| {
            let got = read_stream(&format!("dsmr/{file}"));
            (got != Ok(*want)).then(|| format!("{file}: {got:?}, the source says {want} W"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_crc_sent_without_its_leading_zero_passes_the_check() {
    // A heat meter (no power lines): the CRC `B9F` is 0B9F and checks out;
    // what remains is that it measures no power.
    let e = read_stream("dsmr/dsmr_parser-TELEGRAM_UNPADDED_CRC.txt").unwrap_err();
    assert!(e.contains("no `1-0:1.7.0` line"), "{e}");
}

#[test]
fn an_edited_telegram_is_refused_by_its_crc() {
    let e = read_stream("dsmr/homewizard-HWE-P1-telegram.txt").unwrap_err();
    assert!(e.contains("CRC mismatch"), "{e}");
}

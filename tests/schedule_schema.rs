//! The published JSON Schema (src/zendure/schedule.schema.json) and the
//! parser, the one validator at run time, agree: what the parser accepts
//! the schema accepts, what the schema refuses the parser refuses, and the
//! parser is stricter only where a pattern cannot say it (calendar ranges,
//! whole numbers written as 5.0).
#![cfg(feature = "zendure")]

use proptest::prelude::*;
use serde_json::{Value, json};
use zcell_sched::zendure::io::schedule_file;

fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let text = include_str!("../src/zendure/schedule.schema.json");
        let schema: Value = serde_json::from_str(text).expect("the schema is JSON");
        jsonschema::validator_for(&schema).expect("the schema compiles")
    })
}

fn schema_accepts(doc: &Value) -> bool {
    schema().is_valid(doc)
}

fn parser_accepts(doc: &Value) -> bool {
    schedule_file::validate(doc).is_ok()
}

const VALID: [&str; 12] = [
    r#"{}"#,
    r#"{"********0700": 500}"#,
    r#"{"202611231730": "netzero", "2026****1800": "netzero+"}"#,
    r#"{"********2359": -2147483648, "****12312300": 2147483647}"#,
    r#"{"20261*0*1*3*": 0}"#,
    r#"{"****0*3*2*5*": 1}"#,
    r#"{"2028022912**": -1}"#,
    r#"{"************": "netzero"}"#,
    // Values as the reference stores them: numbers and numeric strings,
    // cut toward zero.
    r#"{"********0700": 1.5}"#,
    r#"{"********0700": 5.0}"#,
    r#"{"********0700": "500"}"#,
    r#"{"********0700": " -12.5e1 "}"#,
];

const INVALID: [&str; 14] = [
    r#"{"2026112317": 500}"#,
    r#"{"2026112317000": 500}"#,
    r#"{"20261123173x": 500}"#,
    r#"{"20262*011200": 500}"#,
    r#"{"20261*4*1200": 500}"#,
    r#"{"2026****3*00": 500}"#,
    r#"{"2026******6*": 500}"#,
    r#"{"********0700": "fast"}"#,
    r#"{"********0700": true}"#,
    r#"{"********0700": 2147483648}"#,
    r#"{"********0700": null}"#,
    r#"{"********0700": [500]}"#,
    r#"{"********0700": "NetZero"}"#,
    r#"[1, 2]"#,
];

/// Refused by the parser only: ranges and dates a pattern cannot express.
const STRICTER: [&str; 6] = [
    r#"{"202613011200": 500}"#,
    r#"{"202600011200": 500}"#,
    r#"{"202611001200": 500}"#,
    r#"{"202611232400": 500}"#,
    r#"{"202602301200": 500}"#,
    r#"{"********0700": "1e99"}"#,
];

fn doc(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn both_accept_the_valid_documents() {
    for text in VALID {
        assert!(schema_accepts(&doc(text)), "the schema refuses {text}");
        assert!(parser_accepts(&doc(text)), "the parser refuses {text}");
    }
}

#[test]
fn both_refuse_the_invalid_documents() {
    for text in INVALID {
        assert!(!schema_accepts(&doc(text)), "the schema accepts {text}");
        assert!(!parser_accepts(&doc(text)), "the parser accepts {text}");
    }
}

#[test]
fn the_parser_is_stricter_only_where_the_schema_cannot_say() {
    for text in STRICTER {
        assert!(schema_accepts(&doc(text)), "the schema refuses {text}");
        assert!(!parser_accepts(&doc(text)), "the parser accepts {text}");
    }
}

proptest! {
    /// Over generated keys: the parser never accepts what the schema refuses.
    #[test]
    fn the_parser_accepts_no_key_the_schema_refuses(key in "[0-9*x]{11,13}") {
        let doc = json!({ key.clone(): 100 });
        if parser_accepts(&doc) {
            prop_assert!(schema_accepts(&doc), "{key}");
        }
    }

    /// Keys of digits and wildcards only, where the two disagree only on
    /// calendar ranges.
    #[test]
    fn a_key_the_schema_refuses_the_parser_refuses(key in "[0-9*]{12}") {
        let doc = json!({ key.clone(): "netzero" });
        if !schema_accepts(&doc) {
            prop_assert!(!parser_accepts(&doc), "{key}");
        }
    }

    #[test]
    fn whole_watts_in_range_pass_both(w in any::<i32>()) {
        let doc = json!({ "********0700": w });
        prop_assert!(schema_accepts(&doc) && parser_accepts(&doc));
    }
}

//! The simulated GX must behave as localsettings does (facts doc, section 1),
//! or the integration tests prove nothing. These tests talk to it with a
//! plain D-Bus client.

mod testenv;

use std::collections::HashMap;

use futures_util::StreamExt;
use testenv::{TIME_ZONE, TestEnv, slot_path};
use zbus::{Connection, MatchRule, MessageStream, OwnedVariant, Variant};

const SERVICE: &str = "com.victronenergy.settings";
const BUS_ITEM: &str = "com.victronenergy.BusItem";

async fn connect(env: &TestEnv) -> Connection {
    zbus::connection::Builder::address(env.bus_address.as_str())
        .build()
        .await
        .expect("connect to the private bus")
}

async fn call<B>(
    conn: &Connection,
    path: &str,
    method: &str,
    body: &B,
) -> zbus::Result<zbus::Message>
where
    B: serde::Serialize + zbus::DynamicType,
{
    conn.call_method(Some(SERVICE), path, Some(BUS_ITEM), method, body)
        .await
}

async fn get(conn: &Connection, path: &str) -> OwnedVariant {
    call(conn, path, "GetValue", &())
        .await
        .expect("GetValue")
        .body()
        .deserialize()
        .expect("a variant")
}

async fn set(conn: &Connection, path: &str, value: Variant<'_>) -> i32 {
    call(conn, path, "SetValue", &value)
        .await
        .expect("SetValue")
        .body()
        .deserialize()
        .expect("an int32")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn setvalue_coerces_and_refuses_like_localsettings() {
    let env = TestEnv::new(&[]);
    runtime().block_on(async {
        let conn = connect(&env).await;
        let day = slot_path(0, "Day");
        let cases: Vec<(Variant<'_>, i32, i32)> = vec![
            (Variant::F64(3.7), 0, 3),
            (Variant::from("5"), 0, 5),
            (Variant::Bool(true), 0, 1),
            (Variant::from(" 4 "), 0, 4),
            (Variant::from("abc"), -1, 4),
            (Variant::from("3.7"), -1, 4),
            (Variant::I32(12), -1, 4),
            (Variant::I32(-12), -1, 4),
            (Variant::I32(-11), 0, -11),
            (Variant::I32(11), 0, 11),
        ];
        for (value, result, after) in cases {
            let shown = format!("{value:?}");
            assert_eq!(set(&conn, &day, value).await, result, "{shown}");
            assert_eq!(*get(&conn, &day).await, Variant::I32(after), "{shown}");
        }
        // Unbounded integers and the string setting.
        assert_eq!(
            set(&conn, &slot_path(0, "Start"), Variant::I32(90_000)).await,
            0
        );
        assert_eq!(set(&conn, TIME_ZONE, Variant::I32(5)).await, 0);
        assert_eq!(*get(&conn, TIME_ZONE).await, Variant::from("5"));
        let min: OwnedVariant = call(&conn, &slot_path(0, "Start"), "GetMin", &())
            .await
            .unwrap()
            .body()
            .deserialize()
            .unwrap();
        assert_eq!(*min, Variant::I32(0), "unbounded reads as 0");
    });
    assert_eq!(env.slot(0).1, 90_000);
}

#[test]
fn unchanged_value_writes_nothing_and_signals_nothing() {
    let env = TestEnv::new(&[]);
    runtime().block_on(async {
        let conn = connect(&env).await;
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(BUS_ITEM)
            .member("PropertiesChanged")
            .build()
            .unwrap();
        let mut signals = MessageStream::for_match_rule(rule, &conn, None)
            .await
            .unwrap();
        let soc = slot_path(2, "Soc");
        assert_eq!(set(&conn, &soc, Variant::I32(100)).await, 0, "same as now");
        assert_eq!(set(&conn, &soc, Variant::I32(101)).await, -1, "over max");
        assert_eq!(set(&conn, &soc, Variant::I32(40)).await, 0);
        let signal = signals.next().await.unwrap().unwrap();
        assert_eq!(signal.header().path().unwrap().as_str(), soc);
        let change: HashMap<String, OwnedVariant> = signal.body().deserialize().unwrap();
        assert_eq!(*change["Value"], Variant::I32(40));
        assert_eq!(*change["Text"], Variant::from("40"));
    });
}

#[test]
fn groups_answer_with_everything_below_them() {
    let env = TestEnv::new(&[]);
    runtime().block_on(async {
        let conn = connect(&env).await;
        let group = get(&conn, testenv::SCHEDULE).await;
        let dict: HashMap<String, OwnedVariant> = group.try_into().unwrap();
        assert_eq!(dict.len(), 25, "5 slots x 5 leaves");
        assert_eq!(*dict["3/Day"], Variant::I32(-7));
        assert_eq!(*dict["4/AllowDischarge"], Variant::I32(0));
        let items: HashMap<String, HashMap<String, OwnedVariant>> =
            call(&conn, "/", "GetItems", &())
                .await
                .unwrap()
                .body()
                .deserialize()
                .unwrap();
        let soc = &items[&slot_path(1, "Soc")];
        assert_eq!(*soc["Max"], Variant::I32(100));
        assert_eq!(*items[TIME_ZONE]["Value"], Variant::from("/UTC"));
    });
}

#[test]
fn missing_paths_are_unknown_objects() {
    let omit = format!("--omit={}", slot_path(4, "Soc"));
    let env = TestEnv::new(&[&omit]);
    runtime().block_on(async {
        let conn = connect(&env).await;
        for path in [slot_path(5, "Day"), slot_path(4, "Soc")] {
            match call(&conn, &path, "GetValue", &()).await {
                Err(zbus::Error::FDO(e)) => {
                    assert!(
                        matches!(*e, zbus::fdo::Error::UnknownObject(_)),
                        "{path}: {e}"
                    )
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    });
}

/// The Dynamic ESS settings as dbus-systemcalc-py's dynamicess.py creates
/// them (48 windows, types, min/max; min = max = 0 is unbounded), and none
/// with `--no-dess`, as on firmware before Dynamic ESS.
#[test]
fn dynamic_ess_settings_as_systemcalc_creates_them() {
    let items = |env: &TestEnv| {
        runtime().block_on(async {
            let conn = connect(env).await;
            call(&conn, "/", "GetItems", &())
                .await
                .unwrap()
                .body()
                .deserialize::<HashMap<String, HashMap<String, OwnedVariant>>>()
                .unwrap()
        })
    };
    let env = TestEnv::new(&[]);
    let all = items(&env);
    let window = |n: u8, leaf: &str| &all[&format!("/Settings/DynamicEss/Schedule/{n}/{leaf}")];
    assert_eq!(
        all.keys()
            .filter(|p| p.starts_with("/Settings/DynamicEss/Schedule/"))
            .count(),
        48 * 8
    );
    assert!(!all.contains_key("/Settings/DynamicEss/Schedule/48/Start"));
    let target = window(47, "TargetSoc");
    assert_eq!(*target["Value"], Variant::F64(0.0));
    assert_eq!(*target["Max"], Variant::F64(100.0));
    let start = window(0, "Start");
    assert_eq!(*start["Value"], Variant::I32(0));
    assert!(!start.contains_key("Max"), "unbounded");
    for (leaf, max) in [
        ("Strategy", 3),
        ("Restrictions", 3),
        ("Flags", 3),
        ("AllowGridFeedIn", 1),
        ("Soc", 100),
    ] {
        assert_eq!(*window(5, leaf)["Max"], Variant::I32(max), "{leaf}");
        assert_eq!(*window(5, leaf)["Min"], Variant::I32(0), "{leaf}");
    }
    let mode = &all["/Settings/DynamicEss/Mode"];
    assert_eq!(
        (&*mode["Value"], &*mode["Max"]),
        (&Variant::I32(0), &Variant::I32(4))
    );
    let capacity = &all["/Settings/DynamicEss/BatteryCapacity"];
    assert_eq!(*capacity["Value"], Variant::F64(0.0));
    assert_eq!(*capacity["Max"], Variant::F64(1000.0));
    runtime().block_on(async {
        let conn = connect(&env).await;
        let path = "/Settings/DynamicEss/Schedule/3/TargetSoc";
        assert_eq!(set(&conn, path, Variant::I32(55)).await, 0);
        assert_eq!(*get(&conn, path).await, Variant::F64(55.0), "coerced");
        assert_eq!(set(&conn, path, Variant::F64(100.5)).await, -1);
    });

    let old = TestEnv::new(&["--no-dess"]);
    assert!(
        items(&old)
            .keys()
            .all(|p| !p.starts_with("/Settings/DynamicEss")),
        "--no-dess"
    );
}

//! localsettings over D-Bus, as zcell-sched uses it on the GX itself.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use zbus::{Connection, Message, OwnedVariant, Variant};

use super::{MissingSetting, Number, SERVICE, Settings, TIME_ZONE_PATH, slots_from};
use crate::zcell::slot::{Field, SCHEDULE_GROUP, SlotIndex, SlotValues, Write};

const BUS_ITEM: &str = "com.victronenergy.BusItem";
/// What to do when there is no system bus: only off the GX can that be.
const NO_BUS_HINT: &str = "On a GX the system bus is always there; elsewhere set \
                           DBUS_SYSTEM_BUS_ADDRESS or use --gx mqtt://HOST";
/// localsettings answers in milliseconds; a reply this late is not coming.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// localsettings over D-Bus: the system bus, or `DBUS_SYSTEM_BUS_ADDRESS`.
pub struct DbusSettings {
    conn: Connection,
}

impl DbusSettings {
    pub async fn connect() -> Result<Self> {
        let build = zbus::connection::Builder::system().build();
        let conn = match tokio::time::timeout(CALL_TIMEOUT, build).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => bail!(
                "cannot connect to the system D-Bus: {}. {NO_BUS_HINT}",
                crate::exit::causes(&e.into())
            ),
            Err(_) => {
                bail!("the system D-Bus did not answer within {CALL_TIMEOUT:?}. {NO_BUS_HINT}")
            }
        };
        Ok(DbusSettings { conn })
    }

    async fn call<B>(&self, path: &str, method: &str, body: &B) -> Result<Message>
    where
        B: serde::Serialize + zbus::DynamicType,
    {
        let call = self
            .conn
            .call_method(Some(SERVICE), path, Some(BUS_ITEM), method, body);
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| anyhow!("{method} {path}: no reply within {CALL_TIMEOUT:?}"))?
            .map_err(|e| explain(path, method, e))
    }

    async fn get_value(&self, path: &str) -> Result<OwnedVariant> {
        self.call(path, "GetValue", &())
            .await?
            .body()
            .deserialize::<OwnedVariant>()
            .with_context(|| format!("GetValue {path}: the reply is not a variant"))
    }

    /// Every leaf below `group` in one `GetValue`, as localsettings offers.
    async fn read_group(&self, group: &str) -> Result<BTreeMap<String, OwnedVariant>> {
        let value = self.get_value(group).await?;
        BTreeMap::<String, OwnedVariant>::try_from(value)
            .map_err(|e| anyhow!("GetValue {group}: not a dictionary: {e}"))
    }

    async fn set_value(&self, path: &str, value: Variant<'_>) -> Result<()> {
        let shown = value.to_string();
        let reply = self.call(path, "SetValue", &value).await?;
        let code: i32 = reply
            .body()
            .deserialize()
            .with_context(|| format!("SetValue {path}: the reply is not an int32"))?;
        if code != 0 {
            bail!("SetValue {path} = {shown} refused by the GX (returned {code})");
        }
        Ok(())
    }
}

/// Names the path and says what a D-Bus failure means for the owner.
fn explain(path: &str, method: &str, e: zbus::Error) -> anyhow::Error {
    use zbus::fdo::Error as Fdo;
    match &e {
        zbus::Error::FDO(fdo) => match fdo.as_ref() {
            Fdo::UnknownObject(_) | Fdo::UnknownMethod(_) => {
                MissingSetting(path.to_string()).into()
            }
            Fdo::ServiceUnknown(_) | Fdo::NameHasNoOwner(_) => {
                anyhow!("{SERVICE} is not running on the system D-Bus")
            }
            _ => anyhow::Error::new(e).context(format!("{method} {path} failed")),
        },
        _ => anyhow::Error::new(e).context(format!("{method} {path} failed")),
    }
}

/// An integer setting's value; localsettings uses int32, or int64 past its range.
fn int_of(path: &str, value: &Variant<'_>) -> Result<i32> {
    match value {
        Variant::Variant(inner) => int_of(path, inner),
        Variant::I32(v) => Ok(*v),
        Variant::I64(v) => {
            i32::try_from(*v).with_context(|| format!("{path} = {v} is out of range"))
        }
        other => bail!(
            "{path} holds a {} ({other}), not an integer",
            other.value_signature()
        ),
    }
}

impl Settings for DbusSettings {
    async fn time_zone(&self) -> Result<String> {
        let value = self.get_value(TIME_ZONE_PATH).await?;
        match &*value {
            Variant::Str(s) => Ok(s.to_string()),
            other => bail!("{TIME_ZONE_PATH} holds {other}, not a string"),
        }
    }

    async fn read_slots(&self, slots: &[SlotIndex]) -> Result<BTreeMap<SlotIndex, SlotValues>> {
        // Keyed by path relative to the group, as the group read answers.
        let by_leaf = match self.read_group(SCHEDULE_GROUP).await {
            Ok(group) => group,
            // Firmware without group reads: one call per leaf.
            Err(e) if e.is::<MissingSetting>() => {
                let mut leaves = BTreeMap::new();
                for leaf in slots.iter().flat_map(|s| Field::ALL.map(|f| s.leaf(f))) {
                    leaves.insert(leaf.relative(), self.get_value(&leaf.to_string()).await?);
                }
                leaves
            }
            Err(e) => return Err(e),
        };
        slots_from(slots, |leaf| {
            by_leaf
                .get(&leaf.relative())
                .map(|value| int_of(&leaf.to_string(), value))
                .transpose()
        })
    }

    async fn write(&self, write: Write) -> Result<()> {
        self.set_value(&write.leaf.to_string(), Variant::from(write.value))
            .await
    }

    async fn read_numbers(&self, group: &str, leaves: &[String]) -> Result<BTreeMap<String, f64>> {
        if let [leaf] = leaves
            && leaf == group
        {
            let value = self.get_value(leaf).await?;
            return Ok(BTreeMap::from([(leaf.clone(), number_of(leaf, &value)?)]));
        }
        let by_leaf = self.read_group(group).await?;
        leaves
            .iter()
            .map(|leaf| {
                let relative = leaf
                    .strip_prefix(group)
                    .and_then(|r| r.strip_prefix('/'))
                    .unwrap_or(leaf);
                let value = by_leaf
                    .get(relative)
                    .ok_or_else(|| MissingSetting(leaf.clone()))?;
                Ok((leaf.clone(), number_of(leaf, value)?))
            })
            .collect()
    }

    async fn write_number(&self, path: &str, value: Number) -> Result<()> {
        let value = match value {
            Number::Int(n) => match i32::try_from(n) {
                Ok(n) => Variant::I32(n),
                Err(_) => Variant::I64(n),
            },
            Number::Float(x) => Variant::F64(x),
        };
        self.set_value(path, value).await
    }
}

/// A numeric setting's value: int32 or int64 for integers, double otherwise.
fn number_of(path: &str, value: &Variant<'_>) -> Result<f64> {
    match value {
        Variant::Variant(inner) => number_of(path, inner),
        Variant::F64(x) => Ok(*x),
        Variant::I64(n) => Ok(*n as f64),
        other => int_of(path, other).map(f64::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_every_width_localsettings_uses() {
        assert_eq!(int_of("/p", &Variant::I32(-10)).unwrap(), -10);
        assert_eq!(int_of("/p", &Variant::I64(86400)).unwrap(), 86400);
        let nested = Variant::Variant(Box::new(Variant::I32(7)));
        assert_eq!(int_of("/p", &nested).unwrap(), 7);
        let err = int_of("/p", &Variant::F64(1.5)).unwrap_err().to_string();
        assert!(err.contains("/p holds a d"), "{err}");
        assert!(int_of("/p", &Variant::I64(1 << 40)).is_err());
    }

    #[test]
    fn numbers_of_either_type() {
        assert_eq!(number_of("/p", &Variant::F64(55.5)).unwrap(), 55.5);
        assert_eq!(number_of("/p", &Variant::I32(4)).unwrap(), 4.0);
        let nested = Variant::Variant(Box::new(Variant::F64(10.0)));
        assert_eq!(number_of("/p", &nested).unwrap(), 10.0);
        assert!(number_of("/p", &Variant::from("x")).is_err());
    }
}

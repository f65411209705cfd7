//! A day's schedule for the bench programs, in sim time of day:
//! `START=VALUE,...` where START is seconds or `HH:MM[:SS]` and VALUE is a
//! W (+ charge, - discharge), `netzero` or `netzero+`. A value holds from
//! its start to the next; before the first start the last one holds (it
//! carries over midnight). E.g. `0=netzero,07:00=500,12:00=netzero+`.

use anyhow::{Context, Result, bail};

use super::time::parse_time_of_day;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Watts(f64),
    NetZero,
    NetZeroPlus,
}

#[derive(Clone, Debug)]
pub struct Schedule(Vec<(f64, Value)>);

impl std::str::FromStr for Schedule {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Schedule> {
        let mut entries = Vec::new();
        for entry in text.split(',') {
            let (start, value) = entry
                .split_once('=')
                .with_context(|| format!("{entry:?}: expected START=VALUE"))?;
            let start = parse_time_of_day(start.trim()).map_err(anyhow::Error::msg)?;
            let value = match value.trim() {
                "netzero" => Value::NetZero,
                "netzero+" => Value::NetZeroPlus,
                w => Value::Watts(
                    w.parse()
                        .with_context(|| format!("{w:?}: expected W, netzero or netzero+"))?,
                ),
            };
            if let Some((last, _)) = entries.last()
                && start <= *last
            {
                bail!("{entry:?}: starts must increase");
            }
            entries.push((start, value));
        }
        Ok(Schedule(entries))
    }
}

impl Schedule {
    /// The value in force at `t` seconds since midnight of day 0.
    pub fn at(&self, t: f64) -> Value {
        let t = t.rem_euclid(86_400.0);
        let after = self.0.partition_point(|(start, _)| *start <= t);
        let index = after.checked_sub(1).unwrap_or(self.0.len() - 1);
        self.0[index].1
    }
}

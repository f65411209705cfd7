//! A household's day as a CSV file: a header naming the columns `seconds`
//! (since midnight, increasing), `load_w` and `pv_w` (W, >= 0), then one row
//! per point; `#` starts a comment line. Between rows the values are
//! interpolated linearly, or held from the row before (`step`). Before the
//! first row the first row holds; after the last the last holds. Times past
//! a day wrap (the profile is the same every day).

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Interpolation {
    Linear,
    Step,
}

#[derive(Clone, Debug)]
pub struct Profile {
    rows: Vec<(f64, f64, f64)>,
    interpolation: Interpolation,
}

impl Profile {
    pub fn read(path: &Path, interpolation: Interpolation) -> Result<Profile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading profile {}", path.display()))?;
        Profile::parse(&text, interpolation).with_context(|| format!("profile {}", path.display()))
    }

    /// A flat profile (no file given).
    pub fn constant(load_w: f64, pv_w: f64) -> Profile {
        Profile {
            rows: vec![(0.0, load_w, pv_w)],
            interpolation: Interpolation::Step,
        }
    }

    pub fn parse(text: &str, interpolation: Interpolation) -> Result<Profile> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let (_, header) = lines.next().context("no header line")?;
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let column = |name: &str| {
            names
                .iter()
                .position(|n| *n == name)
                .with_context(|| format!("no column {name} in the header"))
        };
        let (ts, load, pv) = (column("seconds")?, column("load_w")?, column("pv_w")?);
        let mut rows: Vec<(f64, f64, f64)> = Vec::new();
        for (number, line) in lines {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let cell = |i: usize| -> Result<f64> {
                let text = cells
                    .get(i)
                    .with_context(|| format!("line {number}: too few columns"))?;
                text.parse().with_context(|| {
                    format!("line {number}: {} is not a number: {text:?}", names[i])
                })
            };
            let row = (cell(ts)?, cell(load)?, cell(pv)?);
            ensure!(
                row.1 >= 0.0 && row.2 >= 0.0,
                "line {number}: load_w and pv_w must be >= 0"
            );
            if let Some(last) = rows.last()
                && row.0 <= last.0
            {
                bail!("line {number}: seconds must increase");
            }
            rows.push(row);
        }
        ensure!(!rows.is_empty(), "no rows");
        Ok(Profile {
            rows,
            interpolation,
        })
    }

    /// (load W, PV W) at `t` seconds since midnight of day 0.
    pub fn at(&self, t: f64) -> (f64, f64) {
        let t = t.rem_euclid(86_400.0);
        let after = self.rows.partition_point(|r| r.0 <= t);
        if after == 0 {
            let r = self.rows[0];
            return (r.1, r.2);
        }
        let a = self.rows[after - 1];
        let Some(&b) = self.rows.get(after) else {
            return (a.1, a.2);
        };
        match self.interpolation {
            Interpolation::Step => (a.1, a.2),
            Interpolation::Linear => {
                let f = (t - a.0) / (b.0 - a.0);
                (a.1 + (b.1 - a.1) * f, a.2 + (b.2 - a.2) * f)
            }
        }
    }
}

//! A price plan as text: one line per slot, then the entries and the
//! expected saving.

use chrono_tz::Tz;

use crate::zendure::core::prices::entries::Proposal;

/// The plan as text: one line per slot, then the entries and the saving.
pub fn show(p: &Proposal, tz: Tz) -> String {
    let mut out = format!(
        "price plan for {} ({}), from {}% SoC\n  time   market    buy  value        SoC\n",
        p.date,
        tz.name(),
        p.soc_percent
    );
    for slot in &p.slots {
        let value = slot.value.to_string();
        let mark = if slot.owner { "  (owner)" } else { "" };
        out += &format!(
            "  {}  {:6.3} {:6.3}  {:<10} {:4.0}%{mark}\n",
            slot.price.start.with_timezone(&tz).format("%H:%M"),
            slot.price.market_eur_per_kwh,
            slot.price.buy_eur_per_kwh,
            value,
            slot.soc_percent,
        );
    }
    let entries: Vec<String> = p
        .entries
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.to_json()))
        .collect();
    out += &format!("entries: {}\n", entries.join(", "));
    out += &format!(
        "expected saving: {:.2} EUR against an idle battery (charge {:.2} kWh, discharge {:.2} kWh)\n",
        p.expected.saving_eur, p.expected.charged_kwh, p.expected.discharged_kwh
    );
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    use crate::zendure::core::prices::entries::{self, Owned};
    use crate::zendure::core::prices::plan::Battery;
    use crate::zendure::core::schedule::Schedule;

    pub(crate) fn sample() -> Proposal {
        use crate::zendure::core::prices::tariff::{Export, PriceSlot, Tariff};
        let start = chrono::DateTime::parse_from_rfc3339("2026-11-24T00:00:00+01:00")
            .unwrap()
            .with_timezone(&Utc);
        let tariff = Tariff {
            vat_percent: 0.0,
            markup_eur_per_kwh: 0.0,
            export: Export::NetMetering,
        };
        let slots = vec![PriceSlot {
            start,
            end: start + Duration::hours(1),
            market_eur_per_kwh: 0.1,
            buy_eur_per_kwh: tariff.buy(0.1),
            sell_eur_per_kwh: tariff.sell(0.1),
        }];
        let battery = Battery {
            capacity_wh: 1000.0,
            min_soc_percent: 10.0,
            max_soc_percent: 100.0,
            max_charge_w: 500.0,
            max_discharge_w: 500.0,
            round_trip_efficiency: 0.9,
        };
        entries::propose(
            &Schedule::default(),
            &Owned::default(),
            slots,
            &battery,
            10.0,
            0.02,
            chrono_tz::Europe::Amsterdam,
        )
    }

    #[test]
    fn text_shows_each_slot_and_the_saving() {
        let text = show(&sample(), chrono_tz::Europe::Amsterdam);
        assert!(
            text.contains("price plan for 2026-11-24 (Europe/Amsterdam)"),
            "{text}"
        );
        assert!(text.contains("  00:00   0.100  0.100  netzero"), "{text}");
        assert!(
            text.contains("entries: 202611240000: \"netzero\""),
            "{text}"
        );
        assert!(text.contains("expected saving: 0.00 EUR"), "{text}");
    }
}

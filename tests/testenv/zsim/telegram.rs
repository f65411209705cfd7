//! Reading DSMR telegrams (the tests' and the baseline's side).

use super::crc::crc16;

/// Net power (W, + import) of a telegram whose CRC checks, or why not.
pub fn telegram_power(telegram: &str) -> Result<f64, String> {
    let start = telegram.find('/').ok_or("no header")?;
    let bang = start + telegram[start..].find('!').ok_or("no CRC line")?;
    let given = telegram[bang + 1..].trim();
    let computed = format!("{:04X}", crc16(&telegram.as_bytes()[start..=bang]));
    if given != computed {
        return Err(format!("CRC {given} != {computed}"));
    }
    let kw = |code: &str| -> Result<f64, String> {
        let from = telegram.find(code).ok_or(format!("no {code}"))? + code.len();
        let to = from + telegram[from..].find('*').ok_or("no unit")?;
        telegram[from..to].parse::<f64>().map_err(|e| e.to_string())
    };
    Ok((kw("1-0:1.7.0(")? - kw("1-0:2.7.0(")?) * 1000.0)
}

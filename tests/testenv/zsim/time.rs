//! Sim times of day on the command lines.

/// Seconds (`25200`, `25200.5`) or `HH:MM[:SS]`.
pub fn parse_time_of_day(text: &str) -> Result<f64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok(seconds);
    }
    let numbers: Option<Vec<f64>> = text.split(':').map(|p| p.parse().ok()).collect();
    match numbers.as_deref() {
        Some([h, m]) => Ok(h * 3600.0 + m * 60.0),
        Some([h, m, s]) => Ok(h * 3600.0 + m * 60.0 + s),
        _ => Err(format!("{text:?} is neither seconds nor HH:MM[:SS]")),
    }
}

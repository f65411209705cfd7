//! What a SolarFlow does with its written properties.

/// The battery power (W, + charge) that `acMode` and the limits ask for,
/// within the device's limits. `acMode` picks the direction; a negative
/// `outputLimit` is obeyed as the highest output, as the firmware does.
pub fn command_w(
    ac_mode: i64,
    input_limit: i64,
    output_limit: i64,
    charge_max_w: i64,
    inverse_max_w: i64,
) -> f64 {
    match ac_mode {
        1 => input_limit.clamp(0, charge_max_w) as f64,
        2 if output_limit < 0 => -(inverse_max_w as f64),
        2 => -(output_limit.min(inverse_max_w) as f64),
        _ => 0.0,
    }
}

//! What the BMS says of each battery, as plain data: the planner reads
//! these and never the HTTP adapter that fills them.

/// One battery's maintenance bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct Battery {
    /// The BMS's `id`, or the position in the list (from 1) when it has none.
    pub id: String,
    pub soc: f64,
    pub stripping: bool,
    pub run_timer: f64,
    pub run_target: f64,
}

impl Battery {
    /// Seconds until maintenance is due; zero or less is due now.
    pub fn seconds_to_maintenance(&self) -> f64 {
        self.run_target - self.run_timer
    }
}

/// Every battery the BMS reported, in its order.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub batteries: Vec<Battery>,
}

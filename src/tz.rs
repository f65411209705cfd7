//! Time zone names as the GX and the config file spell them.

use anyhow::{Result, anyhow};

/// The GX's time zone setting: `Region/City`, or `/UTC` when the owner chose UTC.
pub fn parse_zone(name: &str) -> Result<chrono_tz::Tz> {
    if name == "/UTC" {
        return Ok(chrono_tz::Tz::UTC);
    }
    name.parse().map_err(|_| {
        anyhow!("unknown time zone `{name}` (use Region/City, e.g. Australia/Hobart, or /UTC)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones() {
        assert_eq!(parse_zone("/UTC").unwrap(), chrono_tz::Tz::UTC);
        assert_eq!(
            parse_zone("Australia/Hobart").unwrap(),
            chrono_tz::Australia::Hobart
        );
        assert!(parse_zone("Mars/Olympus").is_err());
        assert!(parse_zone("").is_err());
    }
}

//! Local wall-clock intervals. The GX compares slot windows with its naive
//! local clock, so all planning happens on naive local date-times.

use std::fmt;

use chrono::NaiveDateTime;

/// A half-open local wall-clock interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl Span {
    pub fn new(start: NaiveDateTime, end: NaiveDateTime) -> Option<Self> {
        (start < end).then_some(Span { start, end })
    }

    pub fn contains(&self, t: NaiveDateTime) -> bool {
        self.start <= t && t < self.end
    }

    pub fn intersect(&self, other: &Span) -> Option<Span> {
        Span::new(self.start.max(other.start), self.end.min(other.end))
    }

    /// What is left of `self` once every span in `holes` is cut out, in time
    /// order, each remaining stretch maximal.
    pub fn minus(&self, holes: &[Span]) -> Vec<Span> {
        let mut holes: Vec<Span> = holes.iter().filter_map(|h| h.intersect(self)).collect();
        holes.sort();
        let mut left = Vec::new();
        let mut cursor = self.start;
        for hole in holes {
            if let Some(piece) = Span::new(cursor, hole.start) {
                left.push(piece);
            }
            cursor = cursor.max(hole.end);
        }
        left.extend(Span::new(cursor, self.end));
        left
    }

    /// Wall-clock length in seconds: what the GX's `Duration` must hold,
    /// whatever a DST change does to the real elapsed time.
    pub fn wall_seconds(&self) -> i64 {
        (self.end - self.start).num_seconds()
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}-{}",
            self.start.format("%a %Y-%m-%d"),
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )?;
        let days = (self.end.date() - self.start.date()).num_days();
        if days > 0 {
            write!(f, " (+{days}d)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    }

    fn s(a: (u32, u32), b: (u32, u32)) -> Span {
        Span::new(t(a.0, a.1), t(b.0, b.1)).unwrap()
    }

    #[test]
    fn empty_spans_do_not_exist() {
        assert!(Span::new(t(7, 0), t(7, 0)).is_none());
        assert!(Span::new(t(8, 0), t(7, 0)).is_none());
    }

    #[test]
    fn minus_cuts_overlapping_and_adjacent_holes() {
        let day = s((0, 0), (23, 0));
        let left = day.minus(&[s((9, 0), (12, 0)), s((7, 0), (10, 0)), s((12, 0), (13, 0))]);
        assert_eq!(left, vec![s((0, 0), (7, 0)), s((13, 0), (23, 0))]);
    }

    #[test]
    fn minus_ignores_holes_outside() {
        let w = s((10, 0), (12, 0));
        assert_eq!(w.minus(&[s((1, 0), (2, 0)), s((12, 0), (13, 0))]), vec![w]);
        assert!(w.minus(&[s((9, 0), (13, 0))]).is_empty());
    }

    #[test]
    fn display_marks_crossing_midnight() {
        let next = chrono::NaiveDate::from_ymd_opt(2026, 11, 24)
            .unwrap()
            .and_hms_opt(7, 0, 0)
            .unwrap();
        let span = Span::new(t(21, 0), next).unwrap();
        assert_eq!(span.to_string(), "Mon 2026-11-23 21:00-07:00 (+1d)");
        assert_eq!(span.wall_seconds(), 36000);
    }
}

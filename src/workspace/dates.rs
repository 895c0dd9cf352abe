//! Dates as the task pages read and write them: `YYYY-MM-DD` in forms and
//! `<time datetime>`, and the short label of a due date on the board.

use time::{Date, Month};

/// `2026-11-29`.
pub fn iso_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// `Nov 29`, with the year when it is not the year of `today`.
pub fn short_label(date: Date, today: Date) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS[usize::from(u8::from(date.month())) - 1];
    if date.year() == today.year() {
        format!("{month} {}", date.day())
    } else {
        format!("{month} {}, {}", date.day(), date.year())
    }
}

/// Parses `YYYY-MM-DD` (what `<input type="date">` sends).
pub fn parse_date(input: &str) -> Option<Date> {
    let mut parts = input.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    if !(1900..=9999).contains(&year) {
        return None;
    }
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(
            parse_date("2026-02-28").map(iso_date).as_deref(),
            Some("2026-02-28")
        );
        for bad in ["2026-02-30", "26-1-1x", "", "2026/01/01", "0001-01-01"] {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
    }
}

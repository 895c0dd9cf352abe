//! Bar charts drawn on the server as SVG (no JavaScript, nothing from
//! elsewhere): the geometry is computed here, `control_panel/chart.html`
//! writes it out. Each chart is an image with a label, each bar has a
//! `<title>` (its tooltip), colours come from CSS custom properties (so they
//! follow the theme), the drawing scales with its box (`viewBox`, width
//! 100%), and the same numbers are in a table beside it.

use askama::Template;

/// The drawing's coordinate space.
const WIDTH: f64 = 640.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 26.0;

/// One coloured series, as the legend and the table's header name it.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    /// `chart-s1`, `chart-s2`, `chart-s3`: the colour class.
    pub class: &'static str,
}

#[derive(Clone, Debug)]
pub struct Bar {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    pub class: &'static str,
    pub title: String,
}

#[derive(Clone, Debug)]
pub struct Label {
    pub x: String,
    pub y: String,
    pub anchor: &'static str,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct GridLine {
    pub y: String,
    pub label: String,
}

#[derive(Template, Clone, Debug)]
#[template(path = "control_panel/chart.html")]
pub struct Chart {
    /// What the chart shows, for its heading's id and `aria-label`.
    pub id: String,
    pub label: String,
    pub height: String,
    pub series: Vec<Series>,
    pub bars: Vec<Bar>,
    pub labels: Vec<Label>,
    pub grid: Vec<GridLine>,
    /// The table: the header, then a row per category.
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Said instead of the drawing when every value is zero.
    pub empty: String,
    pub is_empty: bool,
}

const CLASSES: [&str; 3] = ["chart-s1", "chart-s2", "chart-s3"];

fn n(v: f64) -> String {
    format!("{v:.1}")
}

/// A round number at or above `max`, for the top of the scale.
fn nice_ceiling(max: i64) -> i64 {
    if max <= 4 {
        return 4;
    }
    let mut step = 1;
    while step * 10 < max {
        step *= 10;
    }
    for m in [1, 2, 4, 5, 10] {
        if step * m >= max {
            return step * m;
        }
    }
    step * 10
}

/// `12345` as `12,345`.
pub fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

/// What [`Chart::columns`] draws.
pub struct Columns<'a> {
    pub id: &'a str,
    pub label: &'a str,
    /// The table's name for a category ("Day").
    pub category: &'a str,
    pub categories: &'a [String],
    /// Each series' name and its value per category.
    pub series: &'a [(&'a str, Vec<i64>)],
    /// Bars of a category stacked, or side by side.
    pub stacked: bool,
    /// Every how many categories one is named under the axis.
    pub label_every: usize,
    /// Said when every value is zero.
    pub empty: &'a str,
}

impl Chart {
    /// Vertical bars, one group per category (a bar per series side by
    /// side, or stacked), with a scale on the left and every
    /// `label_every`-th category named under the axis.
    pub fn columns(spec: Columns) -> Chart {
        let Columns {
            id,
            label,
            category,
            categories,
            series,
            stacked,
            label_every,
            empty,
        } = spec;
        let height = 220.0;
        let plot_h = height - TOP - BOTTOM;
        let plot_w = WIDTH - LEFT - RIGHT;
        let totals: Vec<i64> = (0..categories.len())
            .map(|i| {
                let vals = series.iter().map(|(_, v)| v.get(i).copied().unwrap_or(0));
                if stacked {
                    vals.sum()
                } else {
                    vals.max().unwrap_or(0)
                }
            })
            .collect();
        let max = totals.iter().copied().max().unwrap_or(0);
        let top = nice_ceiling(max);
        let scale = |v: i64| v as f64 / top as f64 * plot_h;
        let slot = plot_w / categories.len().max(1) as f64;
        let group_w = slot * 0.8;
        let mut bars = Vec::new();
        for (i, cat) in categories.iter().enumerate() {
            let x0 = LEFT + slot * i as f64 + (slot - group_w) / 2.0;
            let mut base = 0;
            for (s, (name, values)) in series.iter().enumerate() {
                let v = values.get(i).copied().unwrap_or(0);
                let (x, w, bottom) = if stacked {
                    (x0, group_w, base)
                } else {
                    let w = group_w / series.len() as f64;
                    (x0 + w * s as f64, w, 0)
                };
                if v > 0 {
                    let y = TOP + plot_h - scale(bottom + v);
                    bars.push(Bar {
                        x: n(x),
                        y: n(y),
                        w: n((w - 1.0).max(1.0)),
                        h: n(scale(v).max(0.5)),
                        class: CLASSES[s % CLASSES.len()],
                        title: format!("{cat}: {} {}", thousands(v), name.to_lowercase()),
                    });
                }
                if stacked {
                    base += v;
                }
            }
        }
        let labels = categories
            .iter()
            .enumerate()
            // Counted back from the newest, so it is always named.
            .filter(|(i, _)| (categories.len() - 1 - i).is_multiple_of(label_every.max(1)))
            .map(|(i, cat)| Label {
                x: n(LEFT + slot * (i as f64 + 0.5)),
                y: n(height - 8.0),
                anchor: "middle",
                text: short_date(cat),
            })
            .collect();
        let grid = [0, top / 2, top]
            .into_iter()
            .map(|v| GridLine {
                y: n(TOP + plot_h - scale(v)),
                label: thousands(v),
            })
            .collect();
        let mut columns = vec![category.to_owned()];
        columns.extend(series.iter().map(|(name, _)| (*name).to_owned()));
        let rows = categories
            .iter()
            .enumerate()
            .map(|(i, cat)| {
                let mut row = vec![cat.clone()];
                row.extend(
                    series
                        .iter()
                        .map(|(_, v)| thousands(v.get(i).copied().unwrap_or(0))),
                );
                row
            })
            .collect();
        Chart {
            id: id.to_owned(),
            label: label.to_owned(),
            height: n(height),
            series: series
                .iter()
                .enumerate()
                .map(|(s, (name, _))| Series {
                    name: (*name).to_owned(),
                    class: CLASSES[s % CLASSES.len()],
                })
                .collect(),
            bars,
            labels,
            grid,
            columns,
            rows,
            empty: empty.to_owned(),
            is_empty: max == 0,
        }
    }

    /// Horizontal bars, one per item, named on the left, largest first as
    /// given; each item is (name in the drawing, name in the table, value),
    /// values written by `show`.
    pub fn ranking(
        id: &str,
        label: &str,
        (item, value): (&str, &str),
        items: &[(String, String, i64)],
        show: fn(i64) -> String,
        empty: &str,
    ) -> Chart {
        let row_h = 24.0;
        let name_w = 180.0;
        let height = TOP + row_h * items.len().max(1) as f64 + 4.0;
        let plot_w = WIDTH - name_w - 70.0;
        let max = items.iter().map(|(_, _, v)| *v).max().unwrap_or(0).max(1);
        let mut bars = Vec::new();
        let mut labels = Vec::new();
        for (i, (name, full, v)) in items.iter().enumerate() {
            let y = TOP + row_h * i as f64;
            let w = (*v as f64 / max as f64 * plot_w).max(1.0);
            bars.push(Bar {
                x: n(name_w),
                y: n(y + 3.0),
                w: n(w),
                h: n(row_h - 6.0),
                class: CLASSES[0],
                title: format!("{full}: {} {}", show(*v), value.to_lowercase()),
            });
            labels.push(Label {
                x: n(name_w - 8.0),
                y: n(y + row_h / 2.0 + 4.0),
                anchor: "end",
                text: truncate(name, 22),
            });
            labels.push(Label {
                x: n(name_w + w + 6.0),
                y: n(y + row_h / 2.0 + 4.0),
                anchor: "start",
                text: show(*v),
            });
        }
        Chart {
            id: id.to_owned(),
            label: label.to_owned(),
            height: n(height),
            series: Vec::new(),
            bars,
            labels,
            grid: Vec::new(),
            columns: vec![item.to_owned(), value.to_owned()],
            rows: items
                .iter()
                .map(|(_, full, v)| vec![full.clone(), show(*v)])
                .collect(),
            empty: empty.to_owned(),
            is_empty: items.iter().all(|(_, _, v)| *v == 0),
        }
    }

    /// Whether a column of the table holds numbers (all but the first).
    fn numeric(&self, column: &usize) -> bool {
        *column > 0
    }
}

/// `2026-12-01` as `1 Dec`; anything else as it is.
fn short_date(day: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = day.split('-');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(m), Some(d)) => match (m.parse::<usize>(), d.parse::<u32>()) {
            (Ok(m @ 1..=12), Ok(d)) => format!("{d} {}", MONTHS[m - 1]),
            _ => day.to_owned(),
        },
        _ => day.to_owned(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_round_up_and_numbers_read_with_separators() {
        assert_eq!(nice_ceiling(0), 4);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(399), 400);
        assert_eq!(nice_ceiling(401), 500);
        assert_eq!(nice_ceiling(501), 1000);
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(short_date("2026-12-01"), "1 Dec");
    }

    #[test]
    fn stacked_bars_sit_on_each_other_and_the_table_has_every_number() {
        let days = vec!["2026-12-01".to_owned(), "2026-12-02".to_owned()];
        let chart = Chart::columns(Columns {
            id: "req",
            label: "Requests",
            category: "Day",
            categories: &days,
            series: &[("Tenant apps", vec![30, 0]), ("Control panel", vec![10, 0])],
            stacked: true,
            label_every: 1,
            empty: "none",
        });
        assert!(!chart.is_empty);
        assert_eq!(chart.bars.len(), 2);
        let (a, b) = (&chart.bars[0], &chart.bars[1]);
        let top_of_a: f64 = a.y.parse().unwrap();
        let bottom_of_b: f64 = b.y.parse::<f64>().unwrap() + b.h.parse::<f64>().unwrap();
        assert!((top_of_a - bottom_of_b).abs() < 0.2);
        assert_eq!(chart.rows[0], ["2026-12-01", "30", "10"]);
        assert_eq!(chart.rows[1], ["2026-12-02", "0", "0"]);
        let html = chart.render().unwrap();
        assert!(html.contains("role=\"img\""));
        assert!(html.contains("<title>2026-12-01: 30 tenant apps</title>"));
    }
}

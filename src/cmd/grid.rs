//! Terminal tables that fit the terminal: when stdout is a terminal (and `--wide` is not given),
//! columns are dropped by a stated priority until every row fits its width, down to 80 columns;
//! a column marked `cut` (an error message) is then shortened with `…`. Nothing else is ever
//! cut (a backup id stays whole) and rows never wrap. Off a terminal (a pipe, a file, cron mail)
//! every column is printed. Failed rows are red where colour is on.

use comfy_table::{Cell, Color};
use unicode_width::UnicodeWidthStr;

use super::Context;

/// The narrowest terminal fitted to: below it, tables are printed as for 80 columns.
pub const MIN_WIDTH: usize = 80;

/// One column: its header, and when it goes.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub header: &'static str,
    /// 0: never dropped; otherwise the higher, the sooner it is dropped to fit.
    pub drop: u8,
    /// May be shortened with `…` once the droppable columns are gone.
    pub cut: bool,
    /// Shortened last, never below 16 columns and never hidden (a name).
    pub name: bool,
}

impl Col {
    /// A column that is never dropped.
    pub const fn keep(header: &'static str) -> Col {
        Col {
            header,
            drop: 0,
            cut: false,
            name: false,
        }
    }

    /// A name (a database): never dropped; shortened with `…` only when the row cannot fit
    /// otherwise, to 16 columns at least.
    pub const fn name(header: &'static str) -> Col {
        Col {
            header,
            drop: 0,
            cut: false,
            name: true,
        }
    }

    /// A column dropped at priority `drop` (the highest go first).
    pub const fn drop(header: &'static str, drop: u8) -> Col {
        Col {
            header,
            drop,
            cut: false,
            name: false,
        }
    }

    /// A column that may be shortened to fit (never dropped).
    pub const fn cut(header: &'static str) -> Col {
        Col {
            header,
            drop: 0,
            cut: true,
            name: false,
        }
    }
}

/// A table being built: columns, then rows (each flagged failed or not).
#[derive(Debug)]
pub struct Grid {
    cols: Vec<Col>,
    rows: Vec<(Vec<String>, Option<Color>)>,
}

/// Cell padding: one space each side.
const PAD: usize = 2;

impl Grid {
    pub fn new(cols: &[Col]) -> Grid {
        Grid {
            cols: cols.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; `failed` rows are red where colour is on.
    pub fn row(&mut self, cells: Vec<String>, failed: bool) {
        self.rows.push((cells, failed.then_some(Color::Red)));
    }

    /// Adds a row in `color` (where colour is on).
    pub fn row_in(&mut self, cells: Vec<String>, color: Option<Color>) {
        self.rows.push((cells, color));
    }

    /// The width to fit to: the terminal's (at least [`MIN_WIDTH`]) when stdout is one and
    /// `--wide` was not given.
    pub fn width(ctx: &Context) -> Option<usize> {
        if ctx.wide {
            return None;
        }
        terminal_size::terminal_size_of(std::io::stdout())
            .map(|(w, _)| usize::from(w.0).max(MIN_WIDTH))
    }

    /// Renders the table for `ctx`'s terminal and colour settings.
    pub fn render(&self, ctx: &Context) -> String {
        self.render_at(Self::width(ctx), ctx.ui.color())
    }

    /// Renders the table fitted to `width` (every column when `None`).
    pub fn render_at(&self, width: Option<usize>, color: bool) -> String {
        let mut shown: Vec<bool> = vec![true; self.cols.len()];
        let mut widths: Vec<usize> = self
            .cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                self.rows
                    .iter()
                    .map(|(r, _)| r.get(i).map_or(0, |s| s.width()))
                    .chain([c.header.width()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let total = |shown: &[bool], widths: &[usize]| -> usize {
            shown
                .iter()
                .zip(widths)
                .filter(|(s, _)| **s)
                .map(|(_, w)| w + PAD)
                .sum()
        };
        let mut cut_to: Vec<Option<usize>> = vec![None; self.cols.len()];
        if let Some(limit) = width {
            // Drop the droppable columns, highest priority number first (the rightmost first
            // among equals), until the rows fit.
            let mut order: Vec<usize> = (0..self.cols.len())
                .filter(|&i| self.cols[i].drop > 0)
                .collect();
            order.sort_by_key(|&i| (std::cmp::Reverse(self.cols[i].drop), std::cmp::Reverse(i)));
            for i in order {
                if total(&shown, &widths) <= limit {
                    break;
                }
                shown[i] = false;
            }
            // Then shorten the column that may be cut to what is left; with less than 10
            // columns left for it, it goes too (`--wide` or `--json` show it). Names and ids
            // are never cut: a row of very long names may still be wider.
            let over = total(&shown, &widths).saturating_sub(limit);
            if over > 0 {
                if let Some(i) = (0..self.cols.len())
                    .rev()
                    .find(|&i| shown[i] && self.cols[i].cut)
                {
                    let w = widths[i].saturating_sub(over);
                    if w >= 10 {
                        cut_to[i] = Some(w);
                        widths[i] = w;
                    } else {
                        shown[i] = false;
                    }
                }
            }
            // Last, names: a very long database name is shortened rather than the row wrapped.
            for i in (0..self.cols.len()).filter(|&i| shown[i] && self.cols[i].name) {
                let over = total(&shown, &widths).saturating_sub(limit);
                if over == 0 {
                    break;
                }
                let w = widths[i].saturating_sub(over).max(16);
                if w < widths[i] {
                    cut_to[i] = Some(w);
                    widths[i] = w;
                }
            }
        }
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::NOTHING);
        t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
        if !color {
            t.force_no_tty();
        } else {
            t.enforce_styling();
        }
        t.set_header(
            self.cols
                .iter()
                .zip(&shown)
                .filter(|(_, s)| **s)
                .map(|(c, _)| c.header),
        );
        for (cells, row_color) in &self.rows {
            let row: Vec<Cell> = cells
                .iter()
                .enumerate()
                .filter(|(i, _)| shown.get(*i).copied().unwrap_or(false))
                .map(|(i, text)| {
                    let text = match cut_to[i] {
                        Some(w) if text.width() > w => shorten(text, w),
                        _ => text.clone(),
                    };
                    let cell = Cell::new(crate::ui::cell_text(&text));
                    match row_color {
                        Some(c) if color => cell.fg(*c),
                        _ => cell,
                    }
                })
                .collect();
            t.add_row(row);
        }
        t.to_string()
    }
}

/// `text` cut to `width` display columns, ending in `…`.
fn shorten(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut w = 0;
    for c in text.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        let mut g = Grid::new(&[
            Col::keep("ID"),
            Col::drop("SERVER", 2),
            Col::keep("DATABASE"),
            Col::drop("RAW", 5),
            Col::drop("AGE", 3),
            Col::cut("ERROR"),
        ]);
        g.row(
            vec![
                "20261129T083226Z_17de1440".into(),
                "main".into(),
                "shop".into(),
                "1.2 MiB".into(),
                "3d".into(),
                "mariadb-dump: Got error: 2013: Lost connection to server during query when dumping table `orders`".into(),
            ],
            true,
        );
        g
    }

    fn widest(s: &str) -> usize {
        s.lines().map(|l| l.trim_end().width()).max().unwrap_or(0)
    }

    #[test]
    fn fits_by_dropping_then_cutting_and_never_cuts_an_id() {
        let g = grid();
        let wide = g.render_at(None, false);
        assert!(widest(&wide) > 80, "{wide}");
        assert!(wide.contains("RAW") && wide.contains("dumping table `orders`"));
        let fitted = g.render_at(Some(80), false);
        assert!(widest(&fitted) <= 80, "{fitted}");
        assert!(fitted.contains("20261129T083226Z_17de1440"), "{fitted}");
        assert!(!fitted.contains("RAW") && !fitted.contains("AGE") && !fitted.contains("SERVER"));
        assert!(fitted.contains('…'), "{fitted}");
        assert_eq!(fitted.lines().count(), 2, "no row wraps:\n{fitted}");
    }

    #[test]
    fn drops_only_what_it_must() {
        let mut g = Grid::new(&[Col::keep("ID"), Col::drop("A", 1), Col::drop("B", 2)]);
        g.row(vec!["x".repeat(60), "a".repeat(8), "b".repeat(8)], false);
        let out = g.render_at(Some(80), false);
        assert!(
            out.contains(" A ") || out.contains(" A\n") || out.contains("A"),
            "{out}"
        );
        assert!(!out.contains('B'), "the higher number goes first:\n{out}");
        assert!(out.contains(&"a".repeat(8)));
    }

    #[test]
    fn failed_rows_are_red_when_colour_is_on() {
        let out = grid().render_at(None, true);
        assert!(
            out.contains("\u{1b}[38;5;9m") || out.contains("\u{1b}[31m"),
            "{out:?}"
        );
        assert!(!grid().render_at(None, false).contains('\u{1b}'));
    }
}

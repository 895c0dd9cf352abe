//! Statement texts without their indentation, at compile time.
//!
//! A tenant's statements are its own (see `db::TenantDb::query`), and sqlx
//! keeps each one's whole text as the key of its statement cache: with
//! 10,000 busy tenants that is 10,000 copies of a page's SQL in the
//! server. Written readably, a third of a long statement is the spaces
//! that indent its lines. [`compact_sql!`] drops them when the crate is
//! compiled; the line breaks stay, so a `--` comment still ends where it
//! did. A line break inside a quoted string or identifier would change
//! its value: such a text does not compile. Only plain `'…'` and `"…"`
//! quotes are recognised, not `E'…'` escapes or `$$` bodies: this is for
//! the statements the app writes, not for migration scripts.

/// The length of `sql` without the spaces and tabs that start its lines.
pub const fn compacted_len(sql: &str) -> usize {
    compact_into(sql, &mut [])
}

/// `sql` without the spaces and tabs that start its lines, as bytes.
pub const fn compacted<const N: usize>(sql: &str) -> [u8; N] {
    let mut out = [0u8; N];
    assert!(compact_into(sql, &mut out) == N, "compacted: wrong length");
    out
}

/// Copies `sql` without line indentation into `out`, as far as it fits;
/// returns the compacted length.
const fn compact_into(sql: &str, out: &mut [u8]) -> usize {
    let bytes = sql.as_bytes();
    let (mut i, mut len) = (0, 0);
    let mut line_start = true;
    // The quote (`'` or `"`) the text is inside of, or 0; whether inside a
    // `--` comment.
    let mut quote = 0u8;
    let mut comment = false;
    while i < bytes.len() {
        let c = bytes[i];
        i += 1;
        if line_start && (c == b' ' || c == b'\t') {
            continue;
        }
        line_start = c == b'\n';
        if c == b'\n' {
            assert!(quote == 0, "compact_sql!: a line break inside quotes");
            comment = false;
        } else if comment {
            // Up to the line break, quotes are prose.
        } else if quote != 0 {
            if c == quote {
                quote = 0;
            }
        } else if c == b'\'' || c == b'"' {
            quote = c;
        } else if c == b'-' && i < bytes.len() && bytes[i] == b'-' {
            comment = true;
        }
        if len < out.len() {
            out[len] = c;
        }
        len += 1;
    }
    len
}

/// A `&'static str` of the SQL text `$sql` (a literal or `concat!`) with
/// the indentation of its lines removed at compile time.
#[macro_export]
macro_rules! compact_sql {
    ($sql:expr) => {{
        const SQL: &str = $sql;
        const BYTES: [u8; $crate::tenancy::compact::compacted_len(SQL)] =
            $crate::tenancy::compact::compacted(SQL);
        const TEXT: &str = match ::std::str::from_utf8(&BYTES) {
            Ok(text) => text,
            Err(_) => panic!("compact_sql!: not UTF-8"),
        };
        TEXT
    }};
}

#[cfg(test)]
mod tests {
    #[test]
    fn indentation_goes_and_line_breaks_stay() {
        const SQL: &str = compact_sql!(
            "SELECT a, -- the first
                    'x  y' AS b
               FROM t
              WHERE c = \"d  e\""
        );
        assert_eq!(
            SQL,
            "SELECT a, -- the first\n'x  y' AS b\nFROM t\nWHERE c = \"d  e\""
        );
    }

    #[test]
    fn a_quote_in_a_comment_is_not_a_string() {
        const SQL: &str = compact_sql!("SELECT 1 -- it's one\n  , 2");
        assert_eq!(SQL, "SELECT 1 -- it's one\n, 2");
    }

    #[test]
    fn a_text_without_indentation_is_unchanged() {
        const SQL: &str = compact_sql!("SELECT 'a' || \"b\"");
        assert_eq!(SQL, "SELECT 'a' || \"b\"");
    }
}

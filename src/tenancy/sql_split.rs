//! Splitting a SQL script into its statements, for servers that take one
//! statement per message (a Citus coordinator forwarding to a worker cannot
//! take several in one prepared statement).
//!
//! Only the top-level `;` that ends a statement is looked for; each statement
//! comes back as the exact slice of the script between two of them, so what
//! the server runs is byte for byte what the file says. A `;` does not end a
//! statement inside
//!
//! - a string: `'...'` (`''` escapes a quote), `E'...'` (a backslash escapes
//!   the next character too), with PostgreSQL's continuation of a string over
//!   a line break (`'a'` newline `'b'`) keeping its kind;
//! - a quoted identifier: `"..."` (`""` escapes a quote);
//! - a dollar-quoted body: `$$...$$` or `$tag$...$tag$` (anything, another
//!   tag included, up to the same tag); `$1` is a parameter, not a quote,
//!   and a `$` inside an identifier (`a$b`) is part of it;
//! - a comment: `--` to the end of the line, or `/* ... */`, which nests;
//! - parentheses, or the `BEGIN ... END` body of a SQL-standard
//!   `CREATE [OR REPLACE] FUNCTION|PROCEDURE` (`BEGIN ATOMIC`), detected the
//!   way `psql` does.
//!
//! Pieces holding nothing but whitespace and comments are skipped. Plain
//! strings are read as with `standard_conforming_strings = on` (PostgreSQL's
//! default since 9.1): a backslash is an ordinary character in them.
//! Unterminated quotes or comments run to the end of the script, for the
//! server to report.

/// The statements of `sql` in order, each its exact text without the `;`
/// that ends it. Empty statements (whitespace and comments only) are left out.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    // Whether anything but whitespace and comments was seen since `start`.
    let mut content = false;
    let mut parens: u32 = 0;
    let mut head = Head::default();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match c {
            b';' if parens == 0 && head.begin_depth == 0 => {
                if content {
                    out.push(&sql[start..i]);
                }
                i += 1;
                start = i;
                content = false;
                head = Head::default();
            }
            b'-' if next == Some(b'-') => i = line_comment_end(b, i),
            b'/' if next == Some(b'*') => i = block_comment_end(b, i),
            b'\'' => {
                content = true;
                i = string_end(b, i, false);
            }
            b'"' => {
                content = true;
                i = quoted_identifier_end(b, i);
            }
            b'$' => {
                content = true;
                i = match dollar_tag(b, i) {
                    Some(tag_len) => dollar_body_end(b, i, tag_len),
                    // A parameter (`$1`) or a stray `$`.
                    None => i + 1,
                };
            }
            c if is_ident_start(c) => {
                content = true;
                let end = identifier_end(b, i);
                let word = &sql[i..end];
                if word.eq_ignore_ascii_case("e") && b.get(end) == Some(&b'\'') {
                    i = string_end(b, end, true);
                } else {
                    head.word(word, parens);
                    i = end;
                }
            }
            b'(' => {
                content = true;
                parens += 1;
                i += 1;
            }
            b')' => {
                content = true;
                parens = parens.saturating_sub(1);
                i += 1;
            }
            c if is_space(c) => i += 1,
            _ => {
                content = true;
                i += 1;
            }
        }
    }
    if content {
        out.push(&sql[start..]);
    }
    out
}

/// The start of a statement, enough to tell a `CREATE FUNCTION` or
/// `CREATE PROCEDURE` whose `BEGIN ... END` body holds semicolons (psql's
/// heuristic: the first identifiers, and BEGIN/CASE/END outside parentheses).
#[derive(Default)]
struct Head {
    count: usize,
    first: [u8; 4],
    begin_depth: u32,
}

impl Head {
    fn word(&mut self, word: &str, parens: u32) {
        let is = |k: &str| word.eq_ignore_ascii_case(k);
        if self.count < self.first.len()
            && ["create", "function", "procedure", "or", "replace"]
                .iter()
                .any(|k| is(k))
        {
            self.first[self.count] = word.as_bytes()[0].to_ascii_lowercase();
        }
        self.count += 1;
        let f = self.first;
        let routine = f[0] == b'c'
            && (f[1] == b'f'
                || f[1] == b'p'
                || (f[1] == b'o' && f[2] == b'r' && (f[3] == b'f' || f[3] == b'p')));
        if routine && parens == 0 {
            if is("begin") {
                self.begin_depth += 1;
            } else if is("case") {
                // CASE ends with END too; it matters only inside a BEGIN.
                if self.begin_depth >= 1 {
                    self.begin_depth += 1;
                }
            } else if is("end") {
                self.begin_depth = self.begin_depth.saturating_sub(1);
            }
        }
    }
}

/// PostgreSQL's `space`: `[ \t\n\r\f\v]`.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c | 0x0b)
}

/// `[A-Za-z_\x80-\xff]`: every byte of a multibyte UTF-8 character counts.
fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_cont(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

fn identifier_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() && is_ident_cont(b[j]) {
        j += 1;
    }
    j
}

/// From `--` to the line break (not included).
fn line_comment_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 2;
    while j < b.len() && b[j] != b'\n' && b[j] != b'\r' {
        j += 1;
    }
    j
}

/// From `/*` past the matching `*/`, counting nested comments.
fn block_comment_end(b: &[u8], i: usize) -> usize {
    let mut depth = 1;
    let mut j = i + 2;
    while j < b.len() {
        if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
            depth += 1;
            j += 2;
        } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return j;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

/// From the opening `'` past the closing one, following continuations
/// (whitespace holding a line break, then `'`) as PostgreSQL does.
fn string_end(b: &[u8], i: usize, backslash_escapes: bool) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' if backslash_escapes => j += 2,
            b'\'' if b.get(j + 1) == Some(&b'\'') => j += 2,
            b'\'' => match continuation(b, j + 1) {
                Some(quote) => j = quote + 1,
                None => return j + 1,
            },
            _ => j += 1,
        }
    }
    b.len()
}

/// Where a string continues after its closing quote: the next `'` if only
/// whitespace with at least one line break, and line comments, come first.
fn continuation(b: &[u8], mut j: usize) -> Option<usize> {
    let mut newline = false;
    while j < b.len() {
        match b[j] {
            b'\n' | b'\r' => {
                newline = true;
                j += 1;
            }
            c if is_space(c) => j += 1,
            b'-' if b.get(j + 1) == Some(&b'-') => j = line_comment_end(b, j),
            b'\'' if newline => return Some(j),
            _ => return None,
        }
    }
    None
}

fn quoted_identifier_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'"' {
            if b.get(j + 1) == Some(&b'"') {
                j += 2;
            } else {
                return j + 1;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

/// The length of the dollar-quote tag at `i` (`$$` or `$tag$`), if one is
/// there: a tag is empty or an identifier without `$` that does not start
/// with a digit, so `$1` is not one.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if b.get(j).is_some_and(|&c| is_ident_start(c)) {
        while j < b.len() && (is_ident_start(b[j]) || b[j].is_ascii_digit()) {
            j += 1;
        }
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1 - i)
}

/// Past the closing tag of the dollar-quoted body whose opening tag, of
/// `tag_len` bytes, is at `i`.
fn dollar_body_end(b: &[u8], i: usize, tag_len: usize) -> usize {
    let tag = &b[i..i + tag_len];
    let body = i + tag_len;
    b[body..]
        .windows(tag_len)
        .position(|w| w == tag)
        .map_or(b.len(), |p| body + p + tag_len)
}

#[cfg(test)]
mod tests {
    use super::split_statements as split;
    use proptest::prelude::*;

    #[test]
    fn plain_statements_keep_their_exact_text() {
        assert_eq!(
            split("SELECT 1;\n  SELECT 2 ;SELECT 3;"),
            ["SELECT 1", "\n  SELECT 2 ", "SELECT 3"]
        );
    }

    #[test]
    fn a_trailing_statement_needs_no_semicolon() {
        assert_eq!(split("SELECT 1; SELECT 2"), ["SELECT 1", " SELECT 2"]);
        assert_eq!(split("SELECT 1"), ["SELECT 1"]);
    }

    #[test]
    fn empty_statements_are_skipped() {
        assert!(split("").is_empty());
        assert!(split(" ;\n; ;").is_empty());
        assert!(split("-- just a comment; really\n /* and; this */ ;\n").is_empty());
        assert_eq!(
            split(";;SELECT 1;; -- done;\n"),
            ["SELECT 1"],
            "a comment after the last semicolon is no statement"
        );
    }

    #[test]
    fn single_quotes_with_doubled_quotes() {
        assert_eq!(
            split("SELECT 'a;b', 'it''s; fine'; SELECT ''';'''"),
            ["SELECT 'a;b', 'it''s; fine'", " SELECT ''';'''"]
        );
        // A backslash is an ordinary character in a standard string.
        assert_eq!(
            split(r"SELECT 'C:\'; SELECT 2"),
            [r"SELECT 'C:\'", " SELECT 2"]
        );
    }

    #[test]
    fn escape_strings_with_backslashes() {
        assert_eq!(
            split(r"SELECT E'a\';b', e'\\'; SELECT E'x''; y'"),
            [r"SELECT E'a\';b', e'\\'", " SELECT E'x''; y'"]
        );
        // `E` only prefixes a string as a word of its own.
        assert_eq!(
            split(r"SELECT some'\'; SELECT 2"),
            [r"SELECT some'\'", " SELECT 2"]
        );
    }

    #[test]
    fn strings_continue_over_line_breaks_and_keep_their_kind() {
        let sql = "SELECT E'a'\n  -- note\n '\\'; still inside'; SELECT 2";
        assert_eq!(
            split(sql),
            ["SELECT E'a'\n  -- note\n '\\'; still inside'", " SELECT 2"]
        );
        // Without a line break it is no continuation.
        assert_eq!(
            split(r"SELECT E'a' '\'; SELECT 2"),
            [r"SELECT E'a' '\'", " SELECT 2"]
        );
    }

    #[test]
    fn double_quoted_identifiers() {
        assert_eq!(
            split(r#"CREATE TABLE "a;b" ("x"";y" int); SELECT 1"#),
            [r#"CREATE TABLE "a;b" ("x"";y" int)"#, " SELECT 1"]
        );
        assert_eq!(
            split(r#"SELECT U&"d\0061;t" FROM t; SELECT U&'\0041;'"#),
            [r#"SELECT U&"d\0061;t" FROM t"#, r" SELECT U&'\0041;'"]
        );
    }

    #[test]
    fn a_function_body_in_dollar_quotes() {
        let function = "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$";
        let trigger =
            "\nCREATE TRIGGER t BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION touch()";
        assert_eq!(
            split(&format!("{function};{trigger};\n")),
            [function, trigger]
        );
    }

    #[test]
    fn dollar_tags_nest_and_parameters_are_not_tags() {
        let outer = "DO $outer$ BEGIN EXECUTE $inner$ SELECT 1; $$ ; $$ $inner$; END $outer$";
        assert_eq!(split(&format!("{outer}; SELECT 2")), [outer, " SELECT 2"]);
        assert_eq!(
            split("SELECT $1; SELECT $2::text, $10; SELECT 3"),
            ["SELECT $1", " SELECT $2::text, $10", " SELECT 3"]
        );
        // `$` inside an identifier, and a tag with a digit after its start.
        assert_eq!(
            split("SELECT a$b$; SELECT $t1$;$t1$; SELECT $_$;$_$"),
            ["SELECT a$b$", " SELECT $t1$;$t1$", " SELECT $_$;$_$"]
        );
        // A number right before `$$` does not swallow it.
        assert_eq!(
            split("SELECT 1$$;$$; SELECT 2"),
            ["SELECT 1$$;$$", " SELECT 2"]
        );
    }

    #[test]
    fn comments_hide_semicolons_and_quotes() {
        assert_eq!(
            split("SELECT 1 -- one; it's\n, 2; SELECT /* a /* b; */ c; ' */ 3"),
            [
                "SELECT 1 -- one; it's\n, 2",
                " SELECT /* a /* b; */ c; ' */ 3"
            ]
        );
        assert_eq!(
            split("SELECT 1 -- carriage return;\r; SELECT 2"),
            ["SELECT 1 -- carriage return;\r", " SELECT 2"]
        );
        // `-` and `/` alone are operators.
        assert_eq!(
            split("SELECT 4-1/2; SELECT 2"),
            ["SELECT 4-1/2", " SELECT 2"]
        );
    }

    #[test]
    fn unterminated_pieces_run_to_the_end() {
        assert_eq!(split("SELECT 'a; SELECT 2"), ["SELECT 'a; SELECT 2"]);
        assert_eq!(split("SELECT $$a; SELECT 2"), ["SELECT $$a; SELECT 2"]);
        assert_eq!(
            split("SELECT 1 /* a; /* b */ ;"),
            ["SELECT 1 /* a; /* b */ ;"]
        );
        assert_eq!(split(r"SELECT E'\"), [r"SELECT E'\"]);
    }

    #[test]
    fn unicode_text() {
        assert_eq!(
            split(
                "INSERT INTO t VALUES ('héllo; wörld', '日本;語'); SELECT \"naïve;\" FROM ünï$x; SELECT '🦀'"
            ),
            [
                "INSERT INTO t VALUES ('héllo; wörld', '日本;語')",
                " SELECT \"naïve;\" FROM ünï$x",
                " SELECT '🦀'"
            ]
        );
        // A tag may hold non-ASCII letters.
        assert_eq!(
            split("SELECT $é$;$é$; SELECT 2"),
            ["SELECT $é$;$é$", " SELECT 2"]
        );
    }

    #[test]
    fn sql_standard_routine_bodies_and_parentheses() {
        let f = "CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql
BEGIN ATOMIC
    SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;
    SELECT a;
END";
        assert_eq!(split(&format!("{f};\nSELECT 2")), [f, "\nSELECT 2"]);
        let p = "CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END";
        assert_eq!(split(&format!("{p}; SELECT 2")), [p, " SELECT 2"]);
        // BEGIN alone is a transaction, not a body.
        assert_eq!(
            split("BEGIN; SELECT 1; END"),
            ["BEGIN", " SELECT 1", " END"]
        );
        assert_eq!(
            split("SELECT (1;2); SELECT 3"),
            ["SELECT (1;2)", " SELECT 3"]
        );
    }

    #[test]
    fn the_tenant_migration_splits_into_its_statements() {
        let sql = include_str!("../../migrations/tenant/0001_workspace.sql");
        let statements = split(sql);
        assert_eq!(statements.len(), 7, "{statements:#?}");
        assert!(statements[0].contains("CREATE TABLE users"));
        assert!(
            statements[6]
                .trim()
                .starts_with("CREATE INDEX tasks_board_idx")
        );
        for s in &statements {
            assert!(sql.contains(s));
        }
    }

    /// Pieces whose meaning does not depend on their neighbours (separated by
    /// a space), many of them holding a `;` that must not split.
    fn piece() -> impl Strategy<Value = String> {
        let word = prop::sample::select(vec![
            "SELECT", "FROM", "t", "x1", "a$b", "ünï", "_q", "42", "$1", "$23", "(a, $2)", "()",
            ",", "+", "-", "/", "*", "::", "=", "e", "U&",
        ])
        .prop_map(str::to_owned);
        let text = "[a-z;' \\\\\"$*/\\-é日🦀\n]{0,12}";
        prop_oneof![
            word,
            text.prop_map(|t| format!("'{}'", t.replace('\\', "").replace('\'', "''"))),
            text.prop_map(|t| format!("E'{}'", t.replace('\\', "\\\\").replace('\'', "\\'"))),
            text.prop_map(|t| format!("\"{}\"", t.replace('"', "\"\""))),
            text.prop_map(|t| format!("$$ {} $$", t.replace('$', ""))),
            text.prop_map(|t| format!("$fn_1$ {} $$;$$ $fn_1$", t.replace('$', ""))),
            text.prop_map(|t| format!("-- {}\n", t.replace(['\n', '\r'], " "))),
            text.prop_map(|t| format!(
                "/* {} /* {} */ */",
                t.replace(['*', '/'], ""),
                t.replace(['*', '/'], "")
            )),
        ]
    }

    /// A statement: pieces with at least one that is not a comment.
    fn statement() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(piece(), 0..6),
            "[A-Za-z_]{1,8}",
            0usize..6,
        )
            .prop_map(|(mut pieces, word, at)| {
                // Never a keyword that changes the rules (CREATE, BEGIN).
                pieces.insert(at.min(pieces.len()), format!("w_{word}"));
                format!(" {} ", pieces.join(" "))
            })
    }

    proptest! {
        #[test]
        fn joined_statements_split_back(
            statements in prop::collection::vec(statement(), 1..6),
            trailing in any::<bool>(),
        ) {
            let mut sql = statements.join(";");
            if trailing {
                sql.push(';');
            }
            prop_assert_eq!(split(&sql), statements);
        }

        #[test]
        fn any_text_splits_into_nonempty_slices_of_it(sql in "\\PC{0,60}") {
            for s in split(&sql) {
                prop_assert!(sql.contains(s));
                prop_assert!(!s.trim().is_empty());
            }
        }
    }
}

//! The task board (`GET /`): the tasks in their columns, with the form for
//! a new one. `POST /tasks` (in `tasks`) shows it again on an invalid form.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Deserializer};
use time::Date;

use super::dates::{iso_date, parse_date, short_label};
use super::member::{Member, User, Visit, WorkspaceNav, member_sql, parse_id};
use super::task_form::{Person, STATUSES, TaskForm};
use crate::web::{AppError, Chrome, FieldErrors, IncomingFlash, Page};

/// A task as a card on the board: a row of the column page, or an array
/// of the board's JSON (in this field order).
#[derive(Debug, sqlx::FromRow, Deserialize)]
struct CardRow {
    /// How many tasks the card's column holds in all.
    column_count: i64,
    id: i64,
    title: String,
    excerpt: String,
    status: String,
    #[serde(deserialize_with = "json_date")]
    due_date: Option<Date>,
    assignee: Option<String>,
}

/// A date as JSON has it (`"2026-12-31"`).
fn json_date<'de, D: Deserializer<'de>>(json: D) -> Result<Option<Date>, D::Error> {
    match Option::<String>::deserialize(json)? {
        None => Ok(None),
        Some(text) => parse_date(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("not a date: {text}"))),
    }
}

pub struct Card {
    pub id: i64,
    pub title: String,
    pub excerpt: String,
    pub due: Option<Due>,
    pub assignee: Option<String>,
    pub assignee_initials: String,
    /// The moves offered on the card: (target status, button label).
    pub moves: Vec<(&'static str, &'static str)>,
}

impl Card {
    fn from_row(row: CardRow, today: Date) -> Card {
        let moves = match row.status.as_str() {
            "todo" => vec![("doing", "Start")],
            "doing" => vec![("todo", "Back to To do"), ("done", "Mark done")],
            _ => vec![("doing", "Reopen")],
        };
        let done = row.status == "done";
        Card {
            id: row.id,
            title: row.title,
            excerpt: row.excerpt,
            due: row.due_date.map(|d| Due::new(d, today, done)),
            assignee_initials: row
                .assignee
                .as_deref()
                .map(crate::web::chrome::initials)
                .unwrap_or_default(),
            assignee: row.assignee,
            moves,
        }
    }
}

pub struct Due {
    /// `2026-11-29`, for `<time datetime>`.
    pub iso: String,
    /// `Nov 29` (with the year when it is not this year).
    pub label: String,
    /// `overdue`, `today` or `later`: a CSS modifier.
    pub state: &'static str,
}

impl Due {
    fn new(date: Date, today: Date, done: bool) -> Due {
        let state = if done {
            "later"
        } else if date < today {
            "overdue"
        } else if date == today {
            "today"
        } else {
            "later"
        };
        Due {
            iso: iso_date(date),
            label: short_label(date, today),
            state,
        }
    }
}

pub struct Column {
    pub status: &'static str,
    pub label: &'static str,
    /// Every task with this status (the cards shown may be fewer).
    pub count: usize,
    pub cards: Vec<Card>,
}

/// Cards per page of a column's own page.
const COLUMN_PAGE: usize = 50;

#[derive(Template, WebTemplate)]
#[template(path = "workspace/board.html", whitespace = "minimize")]
pub struct BoardPage {
    chrome: Chrome,
    flash: IncomingFlash,
    nav: WorkspaceNav,
    csrf: String,
    columns: Vec<Column>,
    total: usize,
    people: Vec<Person>,
    form: TaskForm,
    errors: FieldErrors,
    statuses: [(&'static str, &'static str); 3],
}

/// The board's data, read in one statement with the member's session:
/// each column's count from `task_counts` and its newest 20 cards from the
/// index in the board's order (the column's own page, `/columns/{status}`,
/// has them all; a board of 50,000 tasks reads what one of a hundred
/// does), assignee names by JOIN, and the people to assign to.
/// The cards and the people come as one JSON value beside the member, so
/// the whole page is one row of one column (see [`member_sql!`] on why)
/// and, with every table named with its schema, one round trip outside any
/// transaction ([`Visit::read`]).
pub const BOARD_SQL: &str = member_sql!(
    "SELECT json_build_array(me, json_build_array(
              (SELECT json_agg(json_build_array(c.n, t.id, t.title,
                                 left(t.description, 180), c.status,
                                 t.due_date, u.display_name)
                               ORDER BY t.created_at DESC, t.id DESC)
                 FROM {schema}.task_counts c
                CROSS JOIN LATERAL (
                      SELECT * FROM {schema}.tasks
                       WHERE status = c.status
                       ORDER BY created_at DESC, id DESC
                       LIMIT 20) t
                 LEFT JOIN {schema}.users u ON u.id = t.assignee_id),
              (SELECT json_agg(json_build_array(id, display_name)
                               ORDER BY lower(display_name), id)
                 FROM {schema}.users WHERE active)))
       FROM me"
);

/// The page's part of the board's value: the cards, and the people to
/// assign to (each `null` when there are none).
type BoardData = (Option<Vec<CardRow>>, Option<Vec<Person>>);

fn board_page(
    Page {
        chrome,
        csrf,
        flash,
    }: Page,
    user: &User,
    (rows, people): BoardData,
    form: TaskForm,
    errors: FieldErrors,
) -> BoardPage {
    let today = time::OffsetDateTime::now_utc().date();
    let mut columns: Vec<Column> = STATUSES
        .iter()
        .map(|(status, label)| Column {
            status,
            label,
            count: 0,
            cards: Vec::new(),
        })
        .collect();
    for row in rows.unwrap_or_default() {
        let Some(column) = columns.iter_mut().find(|c| c.status == row.status) else {
            continue;
        };
        column.count = usize::try_from(row.column_count).unwrap_or(0);
        column.cards.push(Card::from_row(row, today));
    }
    BoardPage {
        chrome,
        flash,
        nav: WorkspaceNav::new(user, "board"),
        csrf: csrf.0,
        total: columns.iter().map(|c| c.count).sum(),
        columns,
        people: people.unwrap_or_default(),
        form,
        errors,
        statuses: STATUSES,
    }
}

/// The board again, in the member's transaction, with a task form that
/// did not pass (`POST /tasks`).
pub async fn board_with_form(
    page: Page,
    member: &mut Member,
    form: TaskForm,
    errors: FieldErrors,
) -> Result<BoardPage, AppError> {
    let data = member.page_with(BOARD_SQL).await?;
    Ok(board_page(page, &member.user, data, form, errors))
}

#[derive(Template, WebTemplate)]
#[template(path = "workspace/column.html", whitespace = "minimize")]
pub struct ColumnPage {
    chrome: Chrome,
    nav: WorkspaceNav,
    csrf: String,
    status: &'static str,
    label: &'static str,
    count: usize,
    cards: Vec<Card>,
    /// `?before=` of the next page of older cards, if there is one.
    older: Option<i64>,
    /// Whether this page starts after the newest card.
    later: bool,
}

#[derive(Deserialize)]
pub struct ColumnQuery {
    before: Option<String>,
}

/// `GET /columns/{status}`: one column in full, newest first, a page of
/// cards at a time (`?before=<id>` goes on from that card).
pub async fn column(
    page: Page,
    mut member: Member,
    Path(status): Path<String>,
    Query(query): Query<ColumnQuery>,
) -> Result<ColumnPage, AppError> {
    let Some(&(status, label)) = STATUSES.iter().find(|(s, _)| *s == status) else {
        return Err(AppError::NotFound);
    };
    let before = query.before.as_deref().map(parse_id).transpose()?;
    let db = &mut member.db;
    let count: i64 = db
        .query_scalar("SELECT n FROM task_counts WHERE status = $1")
        .bind(status)
        .fetch_optional(db.conn())
        .await?
        .unwrap_or(0);
    // Two statements, not one with `$2 IS NULL OR …`: tenant statements get
    // generic plans (`tenancy::db::begin_sql`), and a generic plan of that OR
    // could not start the index scan at the `before` card.
    let sql = match before {
        None => {
            "SELECT 0::bigint AS column_count, t.id, t.title, left(t.description, 180) AS excerpt,
                    t.status, t.due_date, u.display_name AS assignee
               FROM tasks t LEFT JOIN users u ON u.id = t.assignee_id
              WHERE t.status = $1
              ORDER BY t.created_at DESC, t.id DESC
              LIMIT $2"
        }
        Some(_) => {
            "SELECT 0::bigint AS column_count, t.id, t.title, left(t.description, 180) AS excerpt,
                    t.status, t.due_date, u.display_name AS assignee
               FROM tasks t LEFT JOIN users u ON u.id = t.assignee_id
              WHERE t.status = $1
                AND (t.created_at, t.id) < (SELECT created_at, id FROM tasks WHERE id = $3)
              ORDER BY t.created_at DESC, t.id DESC
              LIMIT $2"
        }
    };
    let mut query = db.query_as(sql).bind(status).bind(COLUMN_PAGE as i64 + 1);
    if let Some(before) = before {
        query = query.bind(before);
    }
    let mut rows: Vec<CardRow> = query.fetch_all(db.conn()).await?;
    let more = rows.len() > COLUMN_PAGE;
    rows.truncate(COLUMN_PAGE);
    let today = time::OffsetDateTime::now_utc().date();
    let cards: Vec<Card> = rows.into_iter().map(|r| Card::from_row(r, today)).collect();
    Ok(ColumnPage {
        chrome: page.chrome,
        nav: WorkspaceNav::new(&member.user, "board"),
        csrf: page.csrf.0,
        status,
        label,
        count: usize::try_from(count).unwrap_or(0),
        older: cards.last().filter(|_| more).map(|c| c.id),
        later: before.is_some(),
        cards,
    })
}

/// `GET /`: the session check and the board are one statement, on its own
/// (no transaction to open or roll back).
pub async fn board(page: Page, visit: Visit) -> Result<Response, AppError> {
    let (user, data) = visit.read(BOARD_SQL).await?;
    let page = board_page(
        page,
        &user,
        data,
        TaskForm::new_task(),
        FieldErrors::default(),
    );
    // The hottest page: render into a buffer sized for it up front rather
    // than growing (and copying) it a few times per request.
    let shown: usize = page.columns.iter().map(|c| c.cards.len()).sum();
    let mut html = String::with_capacity(8 * 1024 + shown * 1024);
    page.render_into(&mut html)?;
    Ok(Html(html).into_response())
}

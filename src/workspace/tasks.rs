//! The task board and the task pages.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::{Date, Month};

use super::auth::Empty;
use super::member::{Member, WorkspaceNav, parse_id};
use crate::tenancy::{Site, TenantDb};
use crate::web::{AppError, Chrome, CsrfForm, CsrfToken, FieldErrors, Flash, IncomingFlash};

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 10_000;

/// The board's columns, in order: (status, label).
pub const STATUSES: [(&str, &str); 3] = [("todo", "To do"), ("doing", "Doing"), ("done", "Done")];

fn status_label(status: &str) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map_or("To do", |(_, l)| l)
}

/// A task as a card on the board.
#[derive(Debug, sqlx::FromRow)]
struct CardRow {
    id: i64,
    title: String,
    excerpt: String,
    status: String,
    due_date: Option<Date>,
    assignee: Option<String>,
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
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = MONTHS[usize::from(u8::from(date.month())) - 1];
        let label = if date.year() == today.year() {
            format!("{month} {}", date.day())
        } else {
            format!("{month} {}, {}", date.day(), date.year())
        };
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
            label,
            state,
        }
    }
}

fn iso_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

pub struct Column {
    pub status: &'static str,
    pub label: &'static str,
    /// Every task with this status (the cards shown may be fewer).
    pub count: usize,
    pub cards: Vec<Card>,
}

/// The newest this many cards of each column are shown, so a board with
/// years of finished work stays a page, not a megabyte.
pub const CARDS_PER_COLUMN: usize = 100;

/// Someone a task can be assigned to.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Person {
    pub id: i64,
    pub display_name: String,
}

/// The task form's values as typed, for re-display.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TaskForm {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub assignee_id: String,
    #[serde(default)]
    pub due_date: String,
}

impl TaskForm {
    fn new_task() -> TaskForm {
        TaskForm {
            status: "todo".into(),
            ..TaskForm::default()
        }
    }

    /// Whether `id` is the chosen assignee (for `<option selected>`).
    pub fn assigned_to(&self, id: &i64) -> bool {
        self.assignee_id == id.to_string()
    }

    pub fn status_is(&self, status: &&str) -> bool {
        self.status == *status
    }
}

/// A task form that passed validation.
struct ValidTask {
    title: String,
    description: String,
    status: &'static str,
    assignee_id: Option<i64>,
    due_date: Option<Date>,
}

/// Parses `YYYY-MM-DD` (what `<input type="date">` sends).
fn parse_date(input: &str) -> Option<Date> {
    let mut parts = input.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    if !(1900..=9999).contains(&year) {
        return None;
    }
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// Checks the form; the assignee must be an active user of this tenant (or
/// the task's current assignee, kept as is).
async fn validate(
    db: &mut TenantDb,
    form: &TaskForm,
    current_assignee: Option<i64>,
) -> Result<Result<ValidTask, FieldErrors>, AppError> {
    let mut errors = FieldErrors::default();
    let title = form.title.trim();
    if title.is_empty() {
        errors.add("title", "Give the task a title.");
    } else if title.chars().count() > TITLE_MAX {
        errors.add(
            "title",
            format!("A title is at most {TITLE_MAX} characters."),
        );
    } else if title.chars().any(char::is_control) {
        errors.add("title", "A title cannot contain control characters.");
    }
    // Browsers send line breaks in a textarea as CRLF; store plain LF.
    let description = form.description.replace("\r\n", "\n");
    if description.chars().count() > DESCRIPTION_MAX {
        errors.add(
            "description",
            format!("A description is at most {DESCRIPTION_MAX} characters."),
        );
    }
    // A script that leaves the status out means a new task: To do.
    let wanted = match form.status.trim() {
        "" => "todo",
        other => other,
    };
    let status = STATUSES.iter().map(|(s, _)| *s).find(|s| *s == wanted);
    if status.is_none() {
        errors.add("status", "Choose To do, Doing or Done.");
    }
    let due_date = match form.due_date.trim() {
        "" => None,
        raw => {
            let parsed = parse_date(raw);
            if parsed.is_none() {
                errors.add("due_date", "Enter a date such as 2026-12-31.");
            }
            parsed
        }
    };
    let assignee_id = match form.assignee_id.trim() {
        "" => None,
        raw => {
            let id = raw.parse::<i64>().ok();
            let ok = match id {
                Some(id) if Some(id) == current_assignee => true,
                Some(id) => {
                    db.query_scalar::<bool>(
                        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND active)",
                    )
                    .bind(id)
                    .fetch_one(db.conn())
                    .await?
                }
                None => false,
            };
            if !ok {
                errors.add("assignee_id", "Choose someone from the list.");
            }
            id
        }
    };
    Ok(match status {
        Some(status) if errors.is_empty() => Ok(ValidTask {
            title: title.to_owned(),
            description,
            status,
            assignee_id,
            due_date,
        }),
        _ => Err(errors),
    })
}

/// Active users, for the assignee list (plus `also`, a current assignee who
/// has since been deactivated).
async fn people(db: &mut TenantDb, also: Option<i64>) -> Result<Vec<Person>, AppError> {
    Ok(db.query_as(
        "SELECT id, display_name FROM users WHERE active OR id = $1 ORDER BY lower(display_name), id",
    )
    .bind(also)
    .fetch_all(db.conn())
    .await?)
}

// ---- the board ----

#[derive(Template, WebTemplate)]
#[template(path = "workspace/board.html", whitespace = "minimize")]
struct BoardPage {
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

/// Two queries in the member's transaction: the cards (assignee names by
/// JOIN) and the people to assign to. Counts are computed here.
async fn board_page(
    site: &Site,
    member: &mut Member,
    csrf: CsrfToken,
    flash: IncomingFlash,
    form: TaskForm,
    errors: FieldErrors,
) -> Result<BoardPage, AppError> {
    let db = &mut member.db;
    // One plain, index-ordered scan: measured against a window count or a
    // LATERAL per column, it is by far the cheapest for boards of a normal
    // size. Counts come from the rows; only the shown cards are capped.
    let rows: Vec<CardRow> = db
        .query_as(
            "SELECT t.id, t.title, left(t.description, 180) AS excerpt, t.status, t.due_date,
                u.display_name AS assignee
           FROM tasks t LEFT JOIN users u ON u.id = t.assignee_id
          ORDER BY t.created_at DESC, t.id DESC",
        )
        .fetch_all(db.conn())
        .await?;
    let people = people(db, None).await?;
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
    for row in rows {
        let Some(column) = columns.iter_mut().find(|c| c.status == row.status) else {
            continue;
        };
        column.count += 1;
        if column.cards.len() >= CARDS_PER_COLUMN {
            continue;
        }
        let moves = match column.status {
            "todo" => vec![("doing", "Start")],
            "doing" => vec![("todo", "Back to To do"), ("done", "Mark done")],
            _ => vec![("doing", "Reopen")],
        };
        let done = column.status == "done";
        column.cards.push(Card {
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
        });
    }
    Ok(BoardPage {
        chrome: Chrome::for_site(site),
        flash,
        nav: WorkspaceNav::new(&member.user, "board"),
        csrf: csrf.0,
        total: columns.iter().map(|c| c.count).sum(),
        columns,
        people,
        form,
        errors,
        statuses: STATUSES,
    })
}

/// `GET /`: read-only, so the transaction is simply dropped (rolled back
/// when the connection goes back to the pool, which costs no extra trip).
pub async fn board(
    site: Site,
    mut member: Member,
    csrf: CsrfToken,
    flash: IncomingFlash,
) -> Result<Response, AppError> {
    let page = board_page(
        &site,
        &mut member,
        csrf,
        flash,
        TaskForm::new_task(),
        FieldErrors::default(),
    )
    .await?;
    drop(member);
    // The hottest page: render into a buffer sized for it up front rather
    // than growing (and copying) it a few times per request.
    let shown: usize = page.columns.iter().map(|c| c.cards.len()).sum();
    let mut html = String::with_capacity(8 * 1024 + shown * 1024);
    page.render_into(&mut html)?;
    Ok(Html(html).into_response())
}

/// `POST /tasks`.
pub async fn create(
    site: Site,
    mut member: Member,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<TaskForm>,
) -> Result<Response, AppError> {
    match validate(&mut member.db, &form, None).await? {
        Ok(task) => {
            let db = &mut member.db;
            db.query(
                "INSERT INTO tasks (title, description, status, assignee_id, due_date, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&task.title)
            .bind(&task.description)
            .bind(task.status)
            .bind(task.assignee_id)
            .bind(task.due_date)
            .bind(member.user.id)
            .execute(db.conn())
            .await?;
            member.db.commit().await?;
            Ok((Flash::success("Task created."), Redirect::to("/")).into_response())
        }
        Err(errors) => {
            let page =
                board_page(&site, &mut member, csrf, IncomingFlash(None), form, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

// ---- one task ----

#[derive(Debug, sqlx::FromRow)]
struct TaskRow {
    id: i64,
    title: String,
    description: String,
    status: String,
    assignee_id: Option<i64>,
    due_date: Option<Date>,
    created_by: Option<String>,
    created_at: time::OffsetDateTime,
}

async fn find_task(db: &mut TenantDb, id: i64) -> Result<TaskRow, AppError> {
    db.query_as(
        "SELECT t.id, t.title, t.description, t.status, t.assignee_id, t.due_date,
                c.display_name AS created_by, t.created_at
           FROM tasks t LEFT JOIN users c ON c.id = t.created_by
          WHERE t.id = $1",
    )
    .bind(id)
    .fetch_optional(db.conn())
    .await?
    .ok_or(AppError::NotFound)
}

#[derive(Template, WebTemplate)]
#[template(path = "workspace/task.html")]
struct TaskPage {
    chrome: Chrome,
    flash: IncomingFlash,
    nav: WorkspaceNav,
    csrf: String,
    id: i64,
    created: String,
    people: Vec<Person>,
    form: TaskForm,
    errors: FieldErrors,
    statuses: [(&'static str, &'static str); 3],
}

async fn task_page(
    site: &Site,
    member: &mut Member,
    csrf: CsrfToken,
    task: &TaskRow,
    form: TaskForm,
    errors: FieldErrors,
) -> Result<TaskPage, AppError> {
    let people = people(&mut member.db, task.assignee_id).await?;
    let d = task.created_at.date();
    let created = match &task.created_by {
        Some(name) => format!("Created by {name} on {}", iso_date(d)),
        None => format!("Created on {}", iso_date(d)),
    };
    Ok(TaskPage {
        chrome: Chrome::for_site(site),
        flash: IncomingFlash(None),
        nav: WorkspaceNav::new(&member.user, "board"),
        csrf: csrf.0,
        id: task.id,
        created,
        people,
        form,
        errors,
        statuses: STATUSES,
    })
}

/// `GET /tasks/{id}`: the edit form.
pub async fn edit_form(
    site: Site,
    mut member: Member,
    csrf: CsrfToken,
    flash: IncomingFlash,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let id = parse_id(&raw)?;
    let task = find_task(&mut member.db, id).await?;
    let form = TaskForm {
        title: task.title.clone(),
        description: task.description.clone(),
        status: task.status.clone(),
        assignee_id: task.assignee_id.map(|a| a.to_string()).unwrap_or_default(),
        due_date: task.due_date.map(iso_date).unwrap_or_default(),
    };
    let mut page = task_page(
        &site,
        &mut member,
        csrf,
        &task,
        form,
        FieldErrors::default(),
    )
    .await?;
    page.flash = flash;
    Ok(page)
}

/// `POST /tasks/{id}`: saves the edit.
pub async fn update(
    site: Site,
    mut member: Member,
    csrf: CsrfToken,
    Path(raw): Path<String>,
    CsrfForm(form): CsrfForm<TaskForm>,
) -> Result<Response, AppError> {
    let id = parse_id(&raw)?;
    let task = find_task(&mut member.db, id).await?;
    match validate(&mut member.db, &form, task.assignee_id).await? {
        Ok(valid) => {
            let db = &mut member.db;
            db.query(
                "UPDATE tasks SET title = $2, description = $3, status = $4, assignee_id = $5,
                        due_date = $6, updated_at = now()
                  WHERE id = $1",
            )
            .bind(id)
            .bind(&valid.title)
            .bind(&valid.description)
            .bind(valid.status)
            .bind(valid.assignee_id)
            .bind(valid.due_date)
            .execute(db.conn())
            .await?;
            member.db.commit().await?;
            Ok((Flash::success("Task saved."), Redirect::to("/")).into_response())
        }
        Err(errors) => {
            let page = task_page(&site, &mut member, csrf, &task, form, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    status: String,
}

/// `POST /tasks/{id}/move`: one column to another.
pub async fn move_task(
    mut member: Member,
    Path(raw): Path<String>,
    CsrfForm(form): CsrfForm<MoveForm>,
) -> Result<Response, AppError> {
    let id = parse_id(&raw)?;
    let Some(status) = STATUSES.iter().map(|(s, _)| *s).find(|s| *s == form.status) else {
        return Ok(StatusCode::UNPROCESSABLE_ENTITY.into_response());
    };
    let db = &mut member.db;
    let moved = db
        .query("UPDATE tasks SET status = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(status)
        .execute(db.conn())
        .await?;
    if moved.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    member.db.commit().await?;
    let message = format!("Moved to {}.", status_label(status));
    Ok((Flash::success(message), Redirect::to("/")).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "workspace/task_delete.html")]
struct DeletePage {
    chrome: Chrome,
    nav: WorkspaceNav,
    csrf: String,
    id: i64,
    title: String,
}

/// `GET /tasks/{id}/delete`: asks first.
pub async fn delete_form(
    site: Site,
    mut member: Member,
    csrf: CsrfToken,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let id = parse_id(&raw)?;
    let task = find_task(&mut member.db, id).await?;
    Ok(DeletePage {
        chrome: Chrome::for_site(&site),
        nav: WorkspaceNav::new(&member.user, "board"),
        csrf: csrf.0,
        id: task.id,
        title: task.title,
    })
}

/// `POST /tasks/{id}/delete`.
pub async fn delete(
    mut member: Member,
    Path(raw): Path<String>,
    CsrfForm(Empty {}): CsrfForm<Empty>,
) -> Result<Response, AppError> {
    let id = parse_id(&raw)?;
    let db = &mut member.db;
    let deleted = db
        .query("DELETE FROM tasks WHERE id = $1")
        .bind(id)
        .execute(db.conn())
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    member.db.commit().await?;
    Ok((Flash::success("Task deleted."), Redirect::to("/")).into_response())
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

//! The task form: its values as typed, their validation, the statuses a
//! task can have and the people it can be assigned to.

use serde::Deserialize;
use time::Date;

use super::dates::parse_date;
use crate::tenancy::TenantDb;
use crate::web::{AppError, FieldErrors};

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 10_000;

/// The board's columns, in order: (status, label).
pub const STATUSES: [(&str, &str); 3] = [("todo", "To do"), ("doing", "Doing"), ("done", "Done")];

pub fn status_label(status: &str) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map_or("To do", |(_, l)| l)
}

/// Someone a task can be assigned to (a row, or an `[id, name]` array of
/// the board's JSON).
#[derive(Clone, Debug, sqlx::FromRow, Deserialize)]
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
    pub fn new_task() -> TaskForm {
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
pub struct ValidTask {
    pub title: String,
    pub description: String,
    pub status: &'static str,
    pub assignee_id: Option<i64>,
    pub due_date: Option<Date>,
}

/// Checks the form; the assignee must be an active user of this tenant (or
/// the task's current assignee, kept as is).
pub async fn validate(
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
pub async fn people(db: &mut TenantDb, also: Option<i64>) -> Result<Vec<Person>, AppError> {
    Ok(db.query_as(
        "SELECT id, display_name FROM users WHERE active OR id = $1 ORDER BY lower(display_name), id",
    )
    .bind(also)
    .fetch_all(db.conn())
    .await?)
}

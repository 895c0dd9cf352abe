//! One task's pages: creating it (from the board's form), the edit form,
//! moving it to another column, and deleting it.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::Date;

use super::auth::Empty;
use super::board::board_with_form;
use super::dates::iso_date;
use super::member::{Member, WorkspaceNav, parse_id};
use super::task_form::{Person, STATUSES, TaskForm, people, status_label, validate};
use crate::tenancy::TenantDb;
use crate::web::{AppError, Chrome, CsrfForm, FieldErrors, Flash, IncomingFlash, Page};

/// `POST /tasks`.
pub async fn create(
    page: Page,
    mut member: Member,
    CsrfForm(form): CsrfForm<TaskForm>,
) -> Result<Response, AppError> {
    match validate(&mut member.db, &form, None).await? {
        Ok(task) => {
            let db = &mut member.db;
            let status: String = db
                .query_scalar(
                    "INSERT INTO tasks (title, description, status, assignee_id, due_date, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     RETURNING status",
                )
                .bind(&task.title)
                .bind(&task.description)
                .bind(task.status)
                .bind(task.assignee_id)
                .bind(task.due_date)
                .bind(member.user.id)
                .fetch_one(db.conn())
                .await?;
            count_change(db, None, Some(&status)).await?;
            member.db.commit().await?;
            Ok((Flash::success("Task created."), Redirect::to("/")).into_response())
        }
        Err(errors) => {
            let page = board_with_form(page.without_flash(), &mut member, form, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

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
    Page {
        chrome,
        csrf,
        flash,
    }: Page,
    member: &mut Member,
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
        chrome,
        flash,
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
    page: Page,
    mut member: Member,
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
    task_page(page, &mut member, &task, form, FieldErrors::default()).await
}

/// `POST /tasks/{id}`: saves the edit.
pub async fn update(
    page: Page,
    mut member: Member,
    Path(raw): Path<String>,
    CsrfForm(form): CsrfForm<TaskForm>,
) -> Result<Response, AppError> {
    let id = parse_id(&raw)?;
    let task = find_task(&mut member.db, id).await?;
    match validate(&mut member.db, &form, task.assignee_id).await? {
        Ok(valid) => {
            let db = &mut member.db;
            let was = lock_status(db, id).await?;
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
            count_change(db, Some(&was), Some(valid.status)).await?;
            member.db.commit().await?;
            Ok((Flash::success("Task saved."), Redirect::to("/")).into_response())
        }
        Err(errors) => {
            let page = task_page(page.without_flash(), &mut member, &task, form, errors).await?;
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
    let was = lock_status(db, id).await?;
    db.query("UPDATE tasks SET status = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(status)
        .execute(db.conn())
        .await?;
    count_change(db, Some(&was), Some(status)).await?;
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
    page: Page,
    mut member: Member,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let id = parse_id(&raw)?;
    let task = find_task(&mut member.db, id).await?;
    Ok(DeletePage {
        chrome: page.chrome,
        nav: WorkspaceNav::new(&member.user, "board"),
        csrf: page.csrf.0,
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
    let gone: Option<String> = db
        .query_scalar("DELETE FROM tasks WHERE id = $1 RETURNING status")
        .bind(id)
        .fetch_optional(db.conn())
        .await?;
    let Some(gone) = gone else {
        return Err(AppError::NotFound);
    };
    count_change(db, Some(&gone), None).await?;
    member.db.commit().await?;
    Ok((Flash::success("Task deleted."), Redirect::to("/")).into_response())
}

/// The task's status, with its row locked for the rest of the transaction:
/// a change that races this one waits, and each counts from what the other
/// left. No such task: not found.
async fn lock_status(db: &mut TenantDb, id: i64) -> Result<String, AppError> {
    db.query_scalar("SELECT status FROM tasks WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(db.conn())
        .await?
        .ok_or(AppError::NotFound)
}

/// Keeps `task_counts` true when a task leaves the column `from` and/or
/// joins `to`, in the same transaction as the change. A plain `UPDATE` of
/// the counter rows: concurrent changes each add to the latest count.
async fn count_change(
    db: &mut TenantDb,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(), AppError> {
    if from == to {
        return Ok(());
    }
    db.query(
        "UPDATE task_counts SET n = n + CASE WHEN status = $2 THEN 1 ELSE -1 END
          WHERE status IN ($1, $2)",
    )
    .bind(from)
    .bind(to)
    .execute(db.conn())
    .await?;
    Ok(())
}

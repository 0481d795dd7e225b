//! `/api/users/`: the people who may sign in. Admins list, add and remove
//! them and reset passwords; anyone signed in may change their own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use procmon_model::ErrorBody;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::JsonBody;
use crate::auth::{Admin, SignedIn};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::accounts::{Role, UserRecord};

/// A user as shown (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// False for an admin made on first start who has signed in only with
    /// the one-time link so far.
    pub has_password: bool,
}

impl From<UserRecord> for UserInfo {
    fn from(user: UserRecord) -> Self {
        Self {
            has_password: user.password_hash.is_some(),
            name: user.name,
            role: user.role,
            created_at: user.created_at,
        }
    }
}

/// A user to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
    pub name: String,
    pub role: Role,
    /// 8 to 1024 bytes.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// A new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// 8 to 1024 bytes.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// The password now, needed to change one's own (unless signed in by a
    /// one-time link, which is how a lost password is replaced).
    #[schema(value_type = Option<String>, format = Password)]
    pub current_password: Option<SecretString>,
}

/// Every user, by name.
#[utoipa::path(
    get,
    path = "/api/users/",
    operation_id = "list_users",
    tag = "users",
    security(("session" = [])),
    responses(
        (status = 200, description = "Every user, by name", body = Vec<UserInfo>),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Signed in, but not as an admin", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    let users = state.accounts.list_users().await?;
    Ok(Json(users.into_iter().map(UserInfo::from).collect()))
}

/// Adds a user.
#[utoipa::path(
    post,
    path = "/api/users/",
    operation_id = "add_user",
    tag = "users",
    security(("session" = [])),
    params(("X-Procmon-Csrf" = String, Header, description = "Must be `1`")),
    request_body(content = NewUser, content_type = "application/json"),
    responses(
        (status = 201, description = "Added", body = UserInfo),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 409, description = "A user with this name exists", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 422, description = "The name or password is not acceptable, or a field is missing", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name, user = %body.name))]
pub async fn add(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<UserInfo>), ApiError> {
    let user = crate::accounts::add_user(
        state.accounts.as_ref(),
        &body.name,
        body.role,
        Some(body.password),
        state.clock.now(),
    )
    .await?;
    tracing::info!(role = %user.role, "user added");
    Ok((StatusCode::CREATED, Json(UserInfo::from(user))))
}

/// Removes a user and ends their sessions. The last admin stays.
#[utoipa::path(
    delete,
    path = "/api/users/{name}",
    operation_id = "remove_user",
    tag = "users",
    security(("session" = [])),
    params(
        ("name" = String, Path, description = "The user's name"),
        ("X-Procmon-Csrf" = String, Header, description = "Must be `1`"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The user is the only admin", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name, user = %name))]
pub async fn remove(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let users = state.accounts.list_users().await?;
    let user = users
        .iter()
        .find(|u| u.name == name)
        .ok_or_else(|| ApiError::UnknownUser(name.clone()))?;
    let admins = users.iter().filter(|u| u.role == Role::Admin).count();
    if user.role == Role::Admin && admins == 1 {
        return Err(ApiError::LastAdmin(name));
    }
    if !state.accounts.remove_user(&name).await? {
        return Err(ApiError::UnknownUser(name));
    }
    tracing::info!("user removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's password: an admin's for anyone, anyone's for
/// themselves. Their other sessions end.
#[utoipa::path(
    put,
    path = "/api/users/{name}/password",
    operation_id = "set_password",
    tag = "users",
    security(("session" = [])),
    params(
        ("name" = String, Path, description = "The user's name"),
        ("X-Procmon-Csrf" = String, Header, description = "Must be `1`"),
    ),
    request_body(content = PasswordChange, content_type = "application/json"),
    responses(
        (status = 204, description = "Set; the user's other sessions have ended"),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Another user's password and not an admin, the current password wrong or missing, or the X-Procmon-Csrf header missing", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 422, description = "The password is not acceptable", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(by = %signed_in.user.name, user = %name))]
pub async fn set_password(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let own = signed_in.user.name == name;
    if !own && signed_in.user.role != Role::Admin {
        return Err(ApiError::Forbidden(format!(
            "only an admin may set another user's password; {:?} is signed in as a {}",
            signed_in.user.name, signed_in.user.role
        )));
    }
    // Someone who finds a signed-in browser unattended must not lock its
    // owner out: changing one's own password needs the current one.
    if own && !signed_in.via_link && signed_in.user.password_hash.is_some() {
        let current = body
            .current_password
            .ok_or(ApiError::CurrentPasswordWrong)?;
        let hash = signed_in.user.password_hash.clone();
        if !crate::accounts::verify_password(current, hash).await? {
            return Err(ApiError::CurrentPasswordWrong);
        }
    }
    let keep = own.then_some(&signed_in.token_hash);
    crate::accounts::set_password(state.accounts.as_ref(), &name, body.password, keep).await?;
    tracing::info!("password set");
    Ok(StatusCode::NO_CONTENT)
}

//! `DELETE /v1/me`: the caller's account data goes — their memories' objects in the
//! upload bucket, then their `users` row, which takes their memories, conversations and
//! messages with it (`ON DELETE CASCADE`).
//!
//! Objects go before rows, a batch of at most 1000 keys at a time (one `DeleteObjects`
//! call), and each batch's memory rows are forgotten once its objects are gone. So a
//! failure (S3 or the database) leaves the `users` row and every memory whose object may
//! still exist, and a retry resumes where it stopped; the row itself goes only once no
//! memory is left. A caller without a row (deleted already, or never created) is done.
//!
//! The Cognito user stays: the app deletes it with the user's own access token
//! (`DeleteUser`), after this call has answered 204, so the data never outlives the
//! means to delete it.

use anyhow::Context;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use encache_shared::ApiError;
use encache_shared::db::bounded;
use encache_shared::http::Caller;
use encache_shared::users;
use uuid::Uuid;

use super::Deps;
use crate::store::{self, Removal};

/// The most keys one `DeleteObjects` call takes.
pub const MAX_KEYS_PER_REQUEST: usize = 1000;

/// Deletes the caller's account data; `Ok` means none is left.
pub async fn delete_account(req: &ApiGatewayV2httpRequest, deps: &Deps) -> Result<(), ApiError> {
    let caller = Caller::from_request(req)?;
    let limit = deps.settings.db_timeout;
    let Some(user) = bounded(limit, async {
        users::find_by_sub(deps.db.pool().await?, &caller.sub).await
    })
    .await?
    else {
        tracing::info!(cognito_sub = %caller.sub, "no account data to delete");
        return Ok(());
    };
    let mut objects_deleted = 0;
    let result = async {
        loop {
            let keys = bounded(limit, async {
                store::memory_keys(deps.db.pool().await?, user.id, MAX_KEYS_PER_REQUEST as i64)
                    .await
            })
            .await?;
            if keys.is_empty() {
                match bounded(limit, async {
                    store::delete_without_memories(deps.db.pool().await?, user.id).await
                })
                .await?
                {
                    Removal::Deleted | Removal::AlreadyGone => return Ok(()),
                    // An upload raced the deletion: its object goes in the next round.
                    Removal::MemoriesLeft => continue,
                }
            }
            delete_objects(&deps.s3, &deps.settings.bucket, &keys).await?;
            objects_deleted += keys.len();
            bounded(limit, async {
                store::forget_memories(deps.db.pool().await?, user.id, &keys).await
            })
            .await?;
        }
    }
    .await;
    log_outcome(user.id, objects_deleted, &result);
    result
}

fn log_outcome(user_id: Uuid, objects_deleted: usize, result: &Result<(), ApiError>) {
    match result {
        Ok(()) => tracing::info!(%user_id, objects_deleted, "account data deleted"),
        Err(_) => tracing::warn!(
            %user_id,
            objects_deleted,
            "account deletion stopped; the row stays and a retry resumes it"
        ),
    }
}

/// Deletes `keys` from `bucket` in calls of at most [`MAX_KEYS_PER_REQUEST`]. A key that
/// is already gone counts as deleted (S3 reports it so).
pub async fn delete_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    keys: &[String],
) -> Result<(), ApiError> {
    for batch in keys.chunks(MAX_KEYS_PER_REQUEST) {
        let objects = batch
            .iter()
            .map(|key| ObjectIdentifier::builder().key(key).build())
            .collect::<Result<Vec<_>, _>>()
            .context("building the DeleteObjects request")?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            // Quiet: the answer lists only the keys that failed.
            .quiet(true)
            .build()
            .context("building the DeleteObjects request")?;
        let out = s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| s3_failure(&e))?;
        let failed: Vec<_> = out
            .errors()
            .iter()
            .filter(|e| e.code() != Some("NoSuchKey"))
            .collect();
        if let Some(first) = failed.first() {
            let code = first.code().unwrap_or("unknown");
            let detail = format!(
                "DeleteObjects refused {} of {} keys, e.g. {}: {code} ({})",
                failed.len(),
                batch.len(),
                first.key().unwrap_or("?"),
                first.message().unwrap_or("no message")
            );
            return Err(
                if matches!(code, "SlowDown" | "InternalError" | "ServiceUnavailable") {
                    tracing::warn!(error = %detail, "object storage refused some deletions");
                    ApiError::Unavailable("object storage is unavailable, try again".into())
                } else {
                    ApiError::Unexpected(anyhow::anyhow!(detail))
                },
            );
        }
    }
    Ok(())
}

/// Throttling, 5xx, timeouts and broken connections may pass (503); anything else, a
/// missing bucket or a denied permission, needs a human (500).
fn s3_failure<E>(err: &SdkError<E, HttpResponse>) -> ApiError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let text = DisplayErrorContext(err).to_string();
    let passing = match err {
        SdkError::ServiceError(_) => err
            .raw_response()
            .map(|r| r.status().as_u16())
            .is_some_and(|s| s == 429 || s >= 500),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => false,
    };
    if passing {
        tracing::warn!(error = %text, "object storage unavailable");
        ApiError::Unavailable("object storage is unavailable, try again".into())
    } else {
        ApiError::Unexpected(anyhow::anyhow!(text).context("DeleteObjects failed"))
    }
}

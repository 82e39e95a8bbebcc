//! The two SecureStrings of a rotation, on SSM: the current password (what every function
//! reads; Terraform writes it first, write-only) and the pending one (this function's
//! alone, from its create step to its finish step). Errors name parameters, never values.

use aws_sdk_ssm::types::ParameterType;
use encache_shared::aws::Lazy;
use encache_shared::config::Secret;

use crate::error::RotationError;
use crate::settings::RotationSettings;

/// Both passwords as SSM has them now.
pub struct Passwords {
    pub current: Option<Secret<String>>,
    pub pending: Option<Secret<String>>,
}

pub struct Parameters {
    client: Lazy<aws_sdk_ssm::Client>,
    current: String,
    pending: String,
    key_id: Option<String>,
}

fn failed(what: &str, e: impl std::error::Error) -> RotationError {
    RotationError::Parameters(format!(
        "{what}: {}",
        aws_sdk_ssm::error::DisplayErrorContext(e)
    ))
}

impl Parameters {
    pub fn new(client: Lazy<aws_sdk_ssm::Client>, settings: &RotationSettings) -> Self {
        Self {
            client,
            current: settings.current_parameter.clone(),
            pending: settings.pending_parameter.clone(),
            key_id: settings.key_id.clone(),
        }
    }

    /// Both values in one `GetParameters` call (with decryption).
    pub async fn read(&self) -> Result<Passwords, RotationError> {
        let out = self
            .client
            .get_parameters()
            .names(&self.current)
            .names(&self.pending)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                RotationError::Unavailable(format!(
                    "reading SSM parameters {} and {}: {}",
                    self.current,
                    self.pending,
                    aws_sdk_ssm::error::DisplayErrorContext(e)
                ))
            })?;
        let mut passwords = Passwords {
            current: None,
            pending: None,
        };
        for p in out.parameters.unwrap_or_default() {
            let (Some(name), Some(value)) = (p.name, p.value) else {
                continue;
            };
            if name == self.current {
                passwords.current = Some(Secret::new(value));
            } else if name == self.pending {
                passwords.pending = Some(Secret::new(value));
            }
        }
        Ok(passwords)
    }

    /// Stores `password` as the pending one unless there already is one: `false` when
    /// another value got there first (the caller reads it and goes on with that one).
    pub async fn create_pending(&self, password: &Secret<String>) -> Result<bool, RotationError> {
        let result = self
            .put(&self.pending, password, false)
            .description("The functions' login role's next password while a rotation runs (functions/db-rotation): written by its create step, deleted by its finish step.")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_already_exists()) =>
            {
                Ok(false)
            }
            Err(e) => Err(failed(&format!("writing {}", self.pending), e)),
        }
    }

    /// Overwrites the current password (same type, same key; the description stays).
    pub async fn replace_current(&self, password: &Secret<String>) -> Result<(), RotationError> {
        self.put(&self.current, password, true)
            .send()
            .await
            .map_err(|e| failed(&format!("writing {}", self.current), e))?;
        Ok(())
    }

    /// Deletes the pending password; one already gone is no error.
    pub async fn delete_pending(&self) -> Result<(), RotationError> {
        match self
            .client
            .delete_parameter()
            .name(&self.pending)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(())
            }
            Err(e) => Err(failed(&format!("deleting {}", self.pending), e)),
        }
    }

    fn put(
        &self,
        name: &str,
        password: &Secret<String>,
        overwrite: bool,
    ) -> aws_sdk_ssm::operation::put_parameter::builders::PutParameterFluentBuilder {
        self.client
            .put_parameter()
            .name(name)
            .value(password.expose())
            .r#type(ParameterType::SecureString)
            .set_key_id(self.key_id.clone())
            .overwrite(overwrite)
    }
}

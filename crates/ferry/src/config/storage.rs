//! The `[storage]` table: the local disk under `files_root`, or an S3-compatible bucket.

use anyhow::{anyhow, Context, Result};
use ferry_vfs::s3::S3Config;

use super::layer::{Value, Values};

/// Where user files live.
#[derive(Debug, Clone)]
pub enum StorageSettings {
    /// `files_root` on the local disk.
    Local,
    /// An S3 bucket (its `Debug` never shows the secret key).
    S3(S3Config),
}

/// The storage settings from the merged values; S3 needs a bucket, and the secret key comes from the
/// setting (flag, variable, file key) or from `storage.secret_access_key_file`, not both.
pub(super) fn build(v: &Values, origin: &str) -> Result<StorageSettings> {
    if v.text("storage.backend")? != "s3" {
        return Ok(StorageSettings::Local);
    }
    let text = |key: &str| {
        v.opt(key, |x| match x {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        })
        .map(|s| s.filter(|s| !s.is_empty()))
    };
    let bucket = text("storage.bucket")?.ok_or_else(|| {
        anyhow!("{origin}: `storage.backend` is \"s3\" but `storage.bucket` is not set: name the bucket (--storage-bucket)")
    })?;
    let secret = match (text("storage.secret_access_key")?, v.path("storage.secret_access_key_file")?) {
        (Some(_), Some(_)) => {
            return Err(anyhow!(
                "{origin}: give `storage.secret_access_key` or `storage.secret_access_key_file`, not both"
            ))
        }
        (Some(s), None) => Some(s),
        (None, Some(file)) => {
            let raw = std::fs::read_to_string(&file).with_context(|| {
                format!("cannot read `storage.secret_access_key_file` {}", file.display())
            })?;
            Some(raw.trim().to_owned())
        }
        (None, None) => None,
    };
    let access_key_id = text("storage.access_key_id")?;
    if access_key_id.is_some() != secret.is_some() {
        return Err(anyhow!(
            "{origin}: give `storage.access_key_id` and a secret access key together (or neither, to use \
             the AWS environment's credentials)"
        ));
    }
    Ok(StorageSettings::S3(S3Config {
        endpoint: text("storage.endpoint")?,
        bucket,
        region: v.text("storage.region")?,
        prefix: v.text("storage.prefix")?,
        path_style: v.bool("storage.path_style")?,
        access_key_id,
        secret_access_key: secret,
        danger_allow_dir_rename: v.bool("storage.danger_allow_dir_rename")?,
    }))
}
